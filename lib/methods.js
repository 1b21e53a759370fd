'use strict'

// The methods the plugin adds to a resource: set/add/sub/consolidate, with the
// manual's single-field `(id, amount)` and multi-field `(id, field, amount)`
// forms. Every plugin instance serving a resource registers its fields in
// `resource._eventualConsistencyPlugins`, so the form follows the field count
// at call time ("Dynamic Field Detection").

const { makeError } = require('./errors')

const OPERATIONS = ['set', 'add', 'sub']
const MARK = Symbol.for('s3db-eventual-consistency.methods')

function describe(v) {
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`
  if (v === null) return 'null'
  return typeof v === 'number' ? String(v) : typeof v
}

function checkId(op, id) {
  if (typeof id === 'number' && Number.isFinite(id)) return String(id)
  if (typeof id !== 'string') throw makeError('EC_INVALID_ARGUMENT', `${op}(id, …): id must be a non-empty string, got ${describe(id)}`)
  if (id.trim() === '') throw makeError('EC_OUT_OF_RANGE', `${op}(id, …): id must be a non-empty string, got an empty string`)
  if (/[\\/=%]/.test(id)) throw makeError('EC_OUT_OF_RANGE', `${op}(id, …): id ${JSON.stringify(id)} may not contain '/', '\\', '=' or '%' (s3db.js rejects them in object keys)`)
  return id
}

function checkAmount(op, amount) {
  if (typeof amount !== 'number') throw makeError('EC_INVALID_ARGUMENT', `${op}(): amount must be a number, got ${describe(amount)}`)
  if (!Number.isFinite(amount)) throw makeError('EC_OUT_OF_RANGE', `${op}(): amount must be a finite number, got ${amount}`)
  return amount
}

function checkOptions(op, opts) {
  if (opts === undefined || opts === null) return undefined
  if (typeof opts !== 'object' || Array.isArray(opts)) throw makeError('EC_INVALID_ARGUMENT', `${op}(): options must be an object, got ${describe(opts)}`)
  const out = {}
  if (opts.key !== undefined) {
    if (typeof opts.key !== 'string' || opts.key === '') throw makeError('EC_INVALID_ARGUMENT', `${op}(): options.key must be a non-empty string, got ${describe(opts.key)}`)
    out.key = opts.key
  }
  if (opts.source !== undefined) {
    if (typeof opts.source !== 'string') throw makeError('EC_INVALID_ARGUMENT', `${op}(): options.source must be a string, got ${describe(opts.source)}`)
    out.source = opts.source
  }
  if (opts.timestamp !== undefined) {
    const t = opts.timestamp instanceof Date ? opts.timestamp.getTime() : opts.timestamp
    if (!(typeof t === 'number' && Number.isFinite(t)) && typeof t !== 'string') {
      throw makeError('EC_INVALID_ARGUMENT', `${op}(): options.timestamp must be a Date, an ISO string or epoch milliseconds, got ${describe(opts.timestamp)}`)
    }
    out.timestamp = t
  }
  return out
}

function registry(resource) {
  if (!resource._eventualConsistencyPlugins) {
    Object.defineProperty(resource, '_eventualConsistencyPlugins', { value: {}, enumerable: false, configurable: true, writable: true })
  }
  return resource._eventualConsistencyPlugins
}

function handlerFor(resource, op, field) {
  const handlers = registry(resource)
  const handler = handlers[field]
  if (!handler) {
    throw makeError('EC_UNKNOWN_FIELD', `${op}(): field ${JSON.stringify(field)} has no eventual consistency on resource '${resource.name}' (fields: ${Object.keys(handlers).join(', ') || 'none'})`)
  }
  return handler
}

/** Splits `(id, [field], amount, [options])` by the resource's field count. */
function parseMutation(resource, op, args) {
  const fields = Object.keys(registry(resource))
  const id = checkId(op, args[0])
  const rest = args.slice(1)
  const longForm = fields.length > 1 || (typeof rest[0] === 'string' && (rest[0] in registry(resource) || typeof rest[1] === 'number'))
  if (longForm) {
    if (typeof rest[0] !== 'string') {
      throw makeError(
        'EC_FIELD_REQUIRED',
        `Multiple fields have eventual consistency on '${resource.name}' (${fields.join(', ')}). Please specify the field: ${op}(id, field, amount)`,
      )
    }
    return { id, handler: handlerFor(resource, op, rest[0]), amount: checkAmount(op, rest[1]), options: checkOptions(op, rest[2]) }
  }
  return { id, handler: handlerFor(resource, op, fields[0]), amount: checkAmount(op, rest[0]), options: checkOptions(op, rest[1]) }
}

function parseConsolidate(resource, args) {
  const fields = Object.keys(registry(resource))
  const id = checkId('consolidate', args[0])
  let [field, options] = [args[1], args[2]]
  if (field !== null && typeof field === 'object') [field, options] = [undefined, field]
  if (field === undefined && fields.length > 1) {
    throw makeError(
      'EC_FIELD_REQUIRED',
      `Multiple fields have eventual consistency on '${resource.name}' (${fields.join(', ')}). Please specify the field: consolidate(id, field)`,
    )
  }
  if (field !== undefined && typeof field !== 'string') {
    throw makeError('EC_INVALID_ARGUMENT', `consolidate(id, field): field must be a string, got ${describe(field)}`)
  }
  if (options !== undefined && (options === null || typeof options !== 'object')) {
    throw makeError('EC_INVALID_ARGUMENT', `consolidate(): options must be an object, got ${describe(options)}`)
  }
  return { id, handler: handlerFor(resource, 'consolidate', field === undefined ? fields[0] : field), options: options || {} }
}

/**
 * Adds `handler` (one field) to the resource, installing the methods once.
 * A handler provides: `record(op, id, amount, options)` and `consolidate(id)`.
 */
function attach(resource, field, handler) {
  registry(resource)[field] = handler
  if (resource[MARK]) return
  for (const op of OPERATIONS) {
    resource[op] = function (...args) {
      try {
        const m = parseMutation(resource, op, args)
        return m.handler.record(op, m.id, m.amount, m.options)
      } catch (e) {
        return Promise.reject(e)
      }
    }
  }
  resource.consolidate = function (...args) {
    try {
      const c = parseConsolidate(resource, args)
      return c.handler.consolidate(c.id, c.options)
    } catch (e) {
      return Promise.reject(e)
    }
  }
  Object.defineProperty(resource, MARK, { value: true, enumerable: false, configurable: true })
}

function detach(resource, field) {
  const handlers = registry(resource)
  delete handlers[field]
  if (Object.keys(handlers).length === 0 && resource[MARK]) {
    for (const op of [...OPERATIONS, 'consolidate']) delete resource[op]
    delete resource[MARK]
  }
}

module.exports = { attach, detach }
