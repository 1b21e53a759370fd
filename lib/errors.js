'use strict'

// Native errors cross as "EC_CODE: message"; callers get JS's own error
// classes (TypeError for wrong types, RangeError for wrong values) with `.code`.
const TYPE_ERRORS = new Set(['EC_INVALID_ARGUMENT', 'EC_INVALID_CONFIG', 'EC_FIELD_REQUIRED'])
const RANGE_ERRORS = new Set(['EC_OUT_OF_RANGE', 'EC_UNKNOWN_FIELD'])

class EventualConsistencyError extends Error {
  constructor(code, message) {
    super(message)
    this.name = 'EventualConsistencyError'
    this.code = code
  }
}

function makeError(code, message) {
  let err
  if (TYPE_ERRORS.has(code)) err = new TypeError(message)
  else if (RANGE_ERRORS.has(code)) err = new RangeError(message)
  else return new EventualConsistencyError(code, message)
  err.code = code
  return err
}

function fromNative(e) {
  const m = /^(EC_[A-Z_]+): ([\s\S]*)$/.exec(e && e.message)
  return m ? makeError(m[1], m[2]) : e
}

/** Runs a native call, rethrowing its error typed. */
async function callNative(fn) {
  try {
    return await fn()
  } catch (e) {
    throw fromNative(e)
  }
}

function callNativeSync(fn) {
  try {
    return fn()
  } catch (e) {
    throw fromNative(e)
  }
}

module.exports = { EventualConsistencyError, makeError, fromNative, callNative, callNativeSync }
