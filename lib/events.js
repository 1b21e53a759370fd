'use strict'

// Events from the Rust core, as the plugin reports them: the manual's
// `eventual-consistency.<name>` on the plugin, s3db.js's
// `plg:eventual-consistency:<name>` on the plugin and on the database, and
// the manual's `[EventualConsistency] …` lines when `verbose` is on.

/** `emit(name, payload, dbPayload?)` sends on both; `log(message)` is the verbose logger. */
function routeEvent(event, { emit, emitPlugin, emitDb, log, window }) {
  switch (event.type) {
    case 'late-arrival':
      log(
        `Late arrival detected: transaction for ${event.cohortHour} is ${Math.floor(event.hoursLate)}h late (watermark: ${window}h). ` +
          (event.written ? 'Processing anyway, but consolidation may not pick it up.' : 'Rejected (lateArrivalStrategy: ignore).'),
      )
      return emit('late-arrival', event)
    case 'lock-held':
      log(`Consolidation already running on another container (${event.resource}.${event.field} ${event.id}, held by ${event.holder})`)
      return emit('lock-held', event)
    case 'record-consolidated':
      return emit('record-consolidated', event)
    case 'record-repaired':
      log(`Record ${event.resource} ${event.id} held ${event.found} instead of the consolidated ${event.value}; rewrote it`)
      return emit('record-repaired', event)
    case 'gc-completed':
      log(event.skipped ? 'GC already running in another container' : `GC removed ${event.deletedCount} applied transactions of ${event.resource}.${event.field}`)
      return emit('gc-completed', event)
    case 'run-completed': {
      const stats = {
        resource: event.resource,
        field: event.field,
        recordCount: event.recordCount,
        transactionCount: event.applied,
        applied: event.applied,
        skipped: event.skipped,
        errors: event.errors,
        durationMs: event.durationMs,
      }
      log(`Consolidated ${stats.recordCount} records of ${stats.resource}.${stats.field} (${stats.applied} transactions, ${stats.skipped} skipped) in ${stats.durationMs} ms`)
      emitPlugin('eventual-consistency.consolidated', stats)
      emitPlugin('plg:eventual-consistency:consolidation-completed', stats)
      // s3db.js's own plugin's payload, for listeners written against it.
      return emitDb('plg:eventual-consistency:consolidation-completed', {
        resource: stats.resource,
        field: stats.field,
        recordsProcessed: stats.recordCount,
        transactionsApplied: stats.applied,
        errorCount: stats.errors,
        skipped: stats.skipped,
      })
    }
    case 'error': {
      const err = Object.assign(new Error(event.message), { resource: event.resource, field: event.field, id: event.id, stage: event.stage })
      log(`${event.stage} error on ${event.resource}.${event.field}${event.id ? ` ${event.id}` : ''}: ${event.message}`)
      const name = event.stage === 'transaction' ? 'transaction-error' : 'consolidation-error'
      return emit(name, err, { resource: event.resource, field: event.field, id: event.id, error: event.message })
    }
    default:
      return undefined
  }
}

module.exports = { routeEvent }
