'use strict'
// s3db.js imports this only from its CLI; the plugin never runs that code path.
function unavailable() {
  throw new Error('cli-args-parser is a local placeholder; the s3db.js CLI is not available in this checkout')
}
module.exports = { parse: unavailable, createParser: unavailable, default: unavailable }
