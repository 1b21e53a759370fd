'use strict'

// The s3db.js resources the plugin keeps beside the user's: transactions
// (the manual's schema) and, with analytics, the roll-up rows.

const { makeError } = require('./errors')

const TRANSACTION_ATTRIBUTES = {
  id: 'string|required',
  originalId: 'string|required',
  field: 'string|required',
  value: 'number|required',
  operation: 'string|required',
  timestamp: 'string|required',
  cohortHour: 'string|required',
  cohortDate: 'string|required',
  cohortMonth: 'string|optional',
  source: 'string|optional',
  applied: 'boolean|optional',
}

const TRANSACTION_PARTITIONS = {
  byHour: { fields: { cohortHour: 'string' } },
  byDay: { fields: { cohortDate: 'string' } },
  byMonth: { fields: { cohortMonth: 'string' } },
}

const ANALYTICS_ATTRIBUTES = {
  id: 'string|required',
  period: 'string|required',
  cohort: 'string|required',
  transactionCount: 'number|required',
  totalValue: 'number|required',
  avgValue: 'number|optional',
  minValue: 'number|optional',
  maxValue: 'number|optional',
  operations: 'json|optional',
  recordCount: 'number|required',
  consolidatedAt: 'string|optional',
  updatedAt: 'string|optional',
  foldSeq: 'number|optional',
}

/** What the Rust codec needs to write a resource's objects as s3db.js does. */
function schemaJson(resource, partitions) {
  return JSON.stringify({ name: resource.name, version: String(resource.version || 'v1'), map: resource.schema.map, partitions })
}

/** Throws unless the user's resource declares `field`. */
function checkField(resource, resourceName, field) {
  const attributes = resource.attributes || (resource.config && resource.config.attributes) || {}
  if (!(field in attributes)) {
    throw makeError(
      'EC_INVALID_CONFIG',
      `EventualConsistencyPlugin: resource '${resourceName}' has no attribute '${field}' (attributes: ${Object.keys(attributes).join(', ')})`,
    )
  }
}

/**
 * Creates (or, on an existing name, gets back) the transaction resource and,
 * with analytics, the analytics resource; returns them with their schemas.
 */
async function createSupportResources(db, resourceName, field, { analytics }) {
  const transactions = await db.createResource({
    name: `${resourceName}_transactions_${field}`,
    attributes: TRANSACTION_ATTRIBUTES,
    partitions: TRANSACTION_PARTITIONS,
    behavior: 'body-overflow',
    timestamps: false,
    asyncPartitions: true,
    createdBy: 'EventualConsistencyPlugin',
  })
  let rows = null
  if (analytics) {
    // body-only: rows are JSON bodies, so each version has its own ETag and can be compare-and-swapped.
    rows = await db.createResource({
      name: `${resourceName}_analytics_${field}`,
      attributes: ANALYTICS_ATTRIBUTES,
      behavior: 'body-only',
      timestamps: false,
      createdBy: 'EventualConsistencyPlugin',
    })
  }
  return {
    transactions,
    analytics: rows,
    transactionSchema: schemaJson(transactions, (transactions.config && transactions.config.partitions) || TRANSACTION_PARTITIONS),
    analyticsSchema: rows ? schemaJson(rows, {}) : null,
  }
}

module.exports = { checkField, createSupportResources }
