// A fault-injecting HTTP proxy to put in front of the S3 server: errors, delays,
// dropped connections and lost replies on a share of the Rust core's requests.
//
//   const proxy = await startFaultProxy({ target: 'http://127.0.0.1:5000', faults: { error500: 0.05 } })
//   proxy.connectionString(bucket, prefix)            // http://test:test@127.0.0.1:<port>/<bucket>/<prefix>

import { once } from 'node:events'
import http from 'node:http'
import { rng, sleep } from './workers.mjs'

/** Requests from the Rust core (aws-sdk-rust); s3db.js's own (aws-sdk-js) are never touched. */
export const isRustSdk = (req) => /aws-sdk-rust/i.test(`${req.headers['user-agent'] || ''} ${req.headers['x-amz-user-agent'] || ''}`)

const FAULT_KINDS = ['error500', 'slowDown503', 'delay', 'dropBeforeForward', 'lostReply', 'error500AfterForward']

function s3Error(code, message) {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>fault-proxy</RequestId></Error>`
}

/**
 * An HTTP proxy in front of `target` (the S3 server). Each request is buffered
 * whole before it is forwarded, so a client that is SIGSTOPped mid-request can
 * never stall the single-threaded S3 server.
 *
 * faults: shares (0..1) of the requests `match` selects (default: the Rust SDK's):
 *   error500            500 InternalError, not forwarded
 *   slowDown503         503 SlowDown, not forwarded
 *   delay               forwarded after delayMs[0..1] ms
 *   dropBeforeForward   the connection is destroyed, nothing forwarded
 *   lostReply           forwarded (it lands), then the connection is destroyed before the reply
 *   error500AfterForward forwarded (it lands), then answered 500 InternalError
 *
 * `hold(predicate)` parks matching requests until `release()`.
 */
export async function startFaultProxy({ target, faults = {}, match = isRustSdk, delayMs = [50, 600], seed = Date.now() } = {}) {
  const upstream = new URL(target)
  const random = rng(seed)
  const stats = { seed: random.seed, total: 0, matched: 0, passed: 0, held: 0, injected: Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) }
  let current = { ...faults }
  let holdPredicate = null
  const parked = []
  const sockets = new Set()

  function pickFault() {
    let r = random()
    for (const kind of FAULT_KINDS) {
      const share = current[kind] || 0
      if (r < share) return kind
      r -= share
    }
    return null
  }

  function forward(req, body) {
    return new Promise((resolve, reject) => {
      const headers = { ...req.headers }
      delete headers.connection
      delete headers['keep-alive']
      delete headers['proxy-connection']
      headers['content-length'] = String(body.length)
      delete headers['transfer-encoding']
      const up = http.request(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers, agent: false },
        (res) => {
          const chunks = []
          res.on('data', (c) => chunks.push(c))
          res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }))
          res.on('error', reject)
        },
      )
      up.on('error', reject)
      up.end(body)
    })
  }

  function reply(req, res, upstreamRes) {
    const headers = { ...upstreamRes.headers }
    for (const h of ['connection', 'keep-alive', 'transfer-encoding']) delete headers[h]
    // Like the S3 server behind it (HTTP/1.0), one request per connection: a client that
    // never reads a response body (s3db.js does that) then cannot tie up its socket pool.
    headers.connection = 'close'
    if (req.method !== 'HEAD') headers['content-length'] = String(upstreamRes.body.length)
    res.writeHead(upstreamRes.status, headers)
    res.end(req.method === 'HEAD' ? undefined : upstreamRes.body)
  }

  function fail(res, status, code, message) {
    const body = s3Error(code, message)
    res.writeHead(status, { 'content-type': 'application/xml', 'content-length': String(Buffer.byteLength(body)), connection: 'close' })
    res.end(body)
  }

  const server = http.createServer(async (req, res) => {
    stats.total++
    const chunks = []
    try {
      for await (const c of req) chunks.push(c)
    } catch {
      return
    }
    const body = Buffer.concat(chunks)
    if (holdPredicate && holdPredicate(req)) {
      stats.held++
      await new Promise((resolve) => parked.push(resolve))
    }
    const selected = match(req)
    const fault = selected ? pickFault() : null
    if (selected) stats.matched++
    if (fault) stats.injected[fault]++
    try {
      switch (fault) {
        case 'error500':
          return fail(res, 500, 'InternalError', 'We encountered an internal error. Please try again. (injected)')
        case 'slowDown503':
          return fail(res, 503, 'SlowDown', 'Please reduce your request rate. (injected)')
        case 'dropBeforeForward':
          return req.socket.destroy()
        case 'delay':
          await sleep(random.int(delayMs[0], delayMs[1]))
          break
        default:
      }
      const upstreamRes = await forward(req, body)
      if (fault === 'lostReply') return req.socket.destroy()
      if (fault === 'error500AfterForward') return fail(res, 500, 'InternalError', 'We encountered an internal error. Please try again. (injected after the request landed)')
      if (!fault) stats.passed++
      return reply(req, res, upstreamRes)
    } catch (e) {
      if (!res.headersSent) fail(res, 502, 'BadGateway', `fault proxy: upstream failed: ${e.message}`)
      else req.socket.destroy()
    }
  })
  server.keepAliveTimeout = 10_000
  server.on('connection', (s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  server.on('clientError', (_, socket) => socket.destroy())
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address()
  const endpoint = `http://127.0.0.1:${port}`

  return {
    port,
    endpoint,
    stats,
    /** The s3db.js connection string through this proxy. */
    connectionString: (bucket, prefix) => `http://test:test@127.0.0.1:${port}/${bucket}/${prefix}`,
    setFaults(next) {
      current = { ...next }
    },
    /** Parks requests matching `predicate` until release(). */
    hold(predicate) {
      holdPredicate = predicate
    },
    /** How many requests are parked now. */
    parked: () => parked.length,
    release() {
      holdPredicate = null
      for (const resolve of parked.splice(0)) resolve()
    },
    /** Faults injected, by kind, and in all. */
    injected() {
      const total = Object.values(stats.injected).reduce((a, b) => a + b, 0)
      return { ...stats.injected, total }
    },
    async close() {
      this.release()
      for (const s of sockets) s.destroy()
      await new Promise((r) => server.close(() => r()))
    },
  }
}
