// Test fixtures: real s3db.js databases on two backends, memory:// and a real
// S3 API server (moto, single-threaded) on 127.0.0.1.
//
//   import { backends, S3db } from './helpers/db.mjs'
//   for (const backend of backends) test(`x (${backend.name})`, async (t) => { const db = await backend.db(t) })
//
// S3DB_PKG=19 runs the suite against s3db.js 19.5.10 instead of 21.6.2.

import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import { createBucket, startS3Server } from './s3-server.mjs'

const require = createRequire(import.meta.url)

export const S3DB_VERSION = process.env.S3DB_PKG === '19' ? '19.5.10' : '21.6.2'
const s3dbModule = S3DB_VERSION === '19.5.10' ? await import('s3db-19') : await import('s3db.js/lite')
export const { S3db, MemoryClient } = s3dbModule
export const { EventualConsistencyPlugin } = require('../../index.js')

export const uid = (n = 6) => randomBytes(n).toString('hex')

// One S3 server per test file (ava runs files in separate processes), started on first use.
let server = null
async function s3Server() {
  if (!server) {
    server = startS3Server().then(async (s) => {
      await createBucket(s.endpoint, 'ec-test')
      return s
    })
  }
  return server
}

export async function stopS3Server() {
  if (server) await (await server).stop()
  server = null
}

export function s3Options() {
  // s3db.js 21 with recker 1.0.56 throws on 204s unless its own handler is off.
  return { httpClientOptions: { useReckerHandler: false } }
}

export async function s3ConnectionString(prefix = `t-${uid()}`) {
  const s = await s3Server()
  const { host } = new URL(s.endpoint)
  return `http://test:test@${host}/ec-test/${prefix}`
}

function dbOptions(connectionString, extra = {}) {
  const opts = { connectionString, logLevel: 'silent', ...extra }
  if (connectionString.startsWith('http')) {
    opts.clientOptions = s3Options()
    // s3db.js retries every failed request, a 404 included, for ~7 s; tests want answers.
    opts.executorPool = { retries: 0 }
  }
  return opts
}

export const backends = [
  {
    name: 'memory',
    connectionString: async () => `memory://ec-${uid()}/app`,
  },
  {
    name: 's3',
    connectionString: () => s3ConnectionString(),
  },
].map((b) => ({
  ...b,
  /** A connected database; disconnected when the test ends. */
  async db(t, extra = {}) {
    const db = new S3db(dbOptions(await b.connectionString(), extra))
    await db.connect()
    t.teardown(() => db.disconnect().catch(() => {}))
    return db
  },
  /** An unconnected database (for `plugins: [...]` + connect()). */
  async unconnected(t, extra = {}) {
    const connectionString = await b.connectionString()
    const db = new S3db(dbOptions(connectionString, extra))
    t.teardown(() => db.disconnect().catch(() => {}))
    return Object.assign(db, { testConnectionString: connectionString })
  },
}))

/** A second database on the same storage as `db` (another "process" in spirit). */
export async function sibling(t, db) {
  const other = new S3db(dbOptions(db.connectionString || db.client.connectionString))
  await other.connect()
  t.teardown(() => other.disconnect().catch(() => {}))
  return other
}

/** Every key stored under the database's prefix. */
export async function allKeys(db) {
  return (await db.client.getAllKeys({ prefix: '' })).map((k) => String(k)).sort()
}

export const WALLET_ATTRIBUTES = { id: 'string|required', balance: 'number|default:0', points: 'number|default:0', name: 'string|optional' }

export async function wallets(db, name = 'wallets') {
  return db.createResource({ name, attributes: WALLET_ATTRIBUTES })
}

export function todayUtc() {
  return new Date().toISOString().slice(0, 10)
}
