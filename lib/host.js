'use strict'

// The JS half of the core's host interface: the core calls `host(call)` and
// this dispatches on `call.op`. It never throws: failures come back as
// `{ error: { kind, message } }` so the core can tell a lost race from a fault.

function isNotFound(e) {
  return Boolean(
    e && (e.name === 'NoSuchKey' || e.code === 'NoSuchKey' || e.statusCode === 404 || (e.original && e.original.name === 'NoSuchKey')),
  )
}

function isPrecondition(e) {
  return Boolean(e && (e.statusCode === 412 || e.$metadata?.httpStatusCode === 412 || /precondition/i.test(String(e.code || e.name || ''))))
}

function errorKind(e) {
  if (isPrecondition(e)) return 'precondition'
  if (isNotFound(e)) return 'notfound'
  const status = e && (e.statusCode || e.$metadata?.httpStatusCode)
  if (status >= 500 || /ECONNRESET|ETIMEDOUT|EPIPE|socket hang up/i.test(String(e && (e.code || e.message)))) return 'transient'
  return 'permanent'
}

async function readBody(res) {
  const body = res && res.Body
  if (!body) return ''
  if (typeof body === 'string') return body
  if (typeof body.transformToString === 'function') return body.transformToString()
  if (Buffer.isBuffer(body)) return body.toString('utf8')
  const chunks = []
  for await (const c of body) chunks.push(Buffer.from(c))
  return Buffer.concat(chunks).toString('utf8')
}

const storeOps = {
  async 'store.put'(client, c) {
    const res = await client.putObject({
      key: c.key,
      metadata: c.metadata || {},
      body: c.body || '',
      contentType: c.contentType || undefined,
      ifMatch: c.ifMatch || undefined,
      ifNoneMatch: c.ifNoneMatch || undefined,
    })
    return { etag: (res && res.ETag) || '' }
  },
  async 'store.get'(client, c) {
    try {
      const res = await client.getObject(c.key)
      return { exists: true, metadata: res.Metadata || {}, body: await readBody(res), etag: res.ETag || '', contentType: res.ContentType }
    } catch (e) {
      if (isNotFound(e)) return { exists: false }
      throw e
    }
  },
  async 'store.delete'(client, c) {
    if (c.ifMatch) {
      // The s3db.js clients take no condition on delete: check, then delete.
      let head
      try {
        head = await client.headObject(c.key)
      } catch (e) {
        if (isNotFound(e)) return {}
        throw e
      }
      if (String(head.ETag || '').replace(/"/g, '') !== String(c.ifMatch).replace(/"/g, '')) {
        return { error: { kind: 'precondition', message: 'changed since read' } }
      }
    }
    await client.deleteObject(c.key)
    return {}
  },
  async 'store.deleteMany'(client, c) {
    if (c.keys.length) await client.deleteObjects(c.keys)
    return {}
  },
  async 'store.list'(client, c) {
    const res = await client.listObjects({ prefix: c.prefix, maxKeys: c.maxKeys, continuationToken: c.cursor || undefined })
    const keys = (res.Contents || []).map((o) => o.Key)
    return { keys, next: res.IsTruncated ? res.NextContinuationToken || null : null }
  },
}

/** A record's current value: `{ exists, value }`. */
async function readRecord(resource, id, field) {
  const record = await resource.getOrNull(id)
  if (!record) return { exists: false }
  const v = record[field]
  return { exists: true, value: typeof v === 'number' && Number.isFinite(v) ? v : 0 }
}

/**
 * Sets the field through the resource (hooks, behaviours and partitions apply);
 * inserts a missing record. `existed` (from the core's last read) picks the
 * first attempt, so a new record costs no failed update.
 */
async function writeRecord(resource, id, field, value, existed) {
  if (existed !== false) {
    try {
      await resource.update(id, { [field]: value })
      return
    } catch (e) {
      if (!isNotFound(e) && !/does not exist/i.test(String(e && e.message))) throw e
    }
  }
  try {
    await resource.insert({ id, [field]: value })
  } catch (e) {
    // Created in between by someone else: update it after all.
    if (!isPrecondition(e) && !/already exists/i.test(String(e && e.message))) throw e
    await resource.update(id, { [field]: value })
  }
}

function describeReducerResult(v) {
  if (typeof v === 'number' && Number.isFinite(v)) return { value: v }
  if (typeof v === 'number') return { value: String(v) }
  return { value: `${v === null ? 'null' : typeof v} (${String(v).slice(0, 40)})` }
}

/**
 * Builds the function handed to the native engine.
 * `ctx` gives: client, resourceFor(name), reducerFor(resource, field), onEvent(event).
 */
function createHost(ctx) {
  return async function host(call) {
    try {
      const storeOp = storeOps[call.op]
      if (storeOp) return await storeOp(ctx.client(), call)
      switch (call.op) {
        case 'record.read':
          return await readRecord(ctx.resourceFor(call.resource), call.id, call.field)
        case 'record.write':
          await writeRecord(ctx.resourceFor(call.resource), call.id, call.field, call.value, call.existed)
          return {}
        case 'reduce':
          return describeReducerResult(await ctx.reducerFor(call.resource, call.field)(call.transactions))
        case 'event':
          ctx.onEvent(call.event)
          return {}
        default:
          return { error: { kind: 'permanent', message: `unknown host call ${call.op}` } }
      }
    } catch (e) {
      return { error: { kind: errorKind(e), message: (e && e.message) || String(e) } }
    }
  }
}

module.exports = { createHost }
