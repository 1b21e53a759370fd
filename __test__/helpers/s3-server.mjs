// Test helper: run the single-threaded moto S3 server (scripts/s3-server.py)
// from the repo's .venv-s3 (created by scripts/s3-venv.sh).
//
//   import { startS3Server, createBucket } from './helpers/s3-server.mjs'
//   const s3 = await startS3Server()        // { endpoint, port, stop() }
//   await createBucket(s3.endpoint, 'my-bucket')
//   ...
//   await s3.stop()
//
// moto never verifies signatures, and an unsigned request is routed to S3 by
// default, so createBucket() uses plain fetch. BUT moto treats a request
// without an `Authorization` header as anonymous and answers 403 (empty body)
// to anonymous GET/HEAD/PUT/DELETE on an *existing* key of a private bucket
// (moto/s3/responses.py _key_response). So raw fetch calls should send
// FAKE_AUTH_HEADERS: a SigV4-shaped header that moto parses (to route to S3)
// but never checks. Use path-style addressing: `${endpoint}/${bucket}/${key}`.
//
// Lifetime: the server is spawned with a pipe on stdin and
// --exit-on-stdin-eof, so it exits as soon as this process goes away, even on
// SIGKILL. The child and its pipes are unref()'d, so a forgotten server never
// keeps the test process alive; stop() SIGTERMs it (SIGKILL after 2 s) and
// resolves once it has exited.

import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createServer } from 'node:net'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
const SERVER_SCRIPT = join(ROOT, 'scripts', 's3-server.py')
const HOST = '127.0.0.1'

function venvPython() {
  if (process.env.S3_SERVER_PYTHON) return process.env.S3_SERVER_PYTHON
  const venv = process.env.S3_VENV_DIR || join(ROOT, '.venv-s3')
  const py = process.platform === 'win32' ? join(venv, 'Scripts', 'python.exe') : join(venv, 'bin', 'python')
  if (!existsSync(py)) {
    throw new Error(`S3 test server venv missing: ${py} not found. Run: sh scripts/s3-venv.sh`)
  }
  return py
}

/** Ask the OS for a free TCP port on 127.0.0.1. */
export function findFreePort() {
  return new Promise((resolvePort, reject) => {
    const srv = createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, HOST, () => {
      const { port } = srv.address()
      srv.close(() => resolvePort(port))
    })
  })
}

/** Headers that make moto treat a raw fetch as an authenticated S3 request. */
export const FAKE_AUTH_HEADERS = Object.freeze({
  authorization:
    'AWS4-HMAC-SHA256 Credential=test/20240101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00',
})

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

async function waitForHttp(endpoint, child, deadline) {
  let lastErr
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) break
    try {
      // Unsigned ListBuckets; any HTTP answer means the server is up.
      const res = await fetch(`${endpoint}/`, { signal: AbortSignal.timeout(2000) })
      await res.arrayBuffer()
      return
    } catch (err) {
      lastErr = err
      await sleep(50)
    }
  }
  throw new Error(`S3 server at ${endpoint} did not answer HTTP: ${lastErr?.message ?? 'process exited'}`)
}

/**
 * Start a moto S3 server on 127.0.0.1.
 * @param {{ port?: number, timeoutMs?: number, logRequests?: boolean }} [opts]
 *   port: fixed port (default: a free port; retried on a bind race)
 * @returns {Promise<{ endpoint: string, port: number, pid: number, stop: () => Promise<void> }>}
 */
export async function startS3Server(opts = {}) {
  const attempts = opts.port ? 1 : 3
  let lastErr
  for (let i = 0; i < attempts; i++) {
    const port = opts.port ?? (await findFreePort())
    try {
      return await startOnPort(port, opts)
    } catch (err) {
      lastErr = err
    }
  }
  throw lastErr
}

async function startOnPort(port, { timeoutMs = 30000, logRequests = false } = {}) {
  const python = venvPython()
  const args = [SERVER_SCRIPT, String(port), '--host', HOST, '--exit-on-stdin-eof']
  if (logRequests) args.push('--log-requests')
  const child = spawn(python, args, {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, PYTHONUNBUFFERED: '1' },
  })

  let stderr = ''
  let stdout = ''
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (d) => {
    stderr = (stderr + d).slice(-8192)
    if (process.env.S3_SERVER_DEBUG) process.stderr.write(`[s3-server] ${d}`)
  })
  child.stdout.setEncoding('utf8')

  const exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })))
  const ready = new Promise((resolveReady, reject) => {
    child.once('error', reject)
    child.stdout.on('data', (d) => {
      stdout += d
      const m = /S3_SERVER_READY (\S+)/.exec(stdout)
      if (m) resolveReady(m[1])
    })
    exited.then(({ code, signal }) =>
      reject(new Error(`S3 server exited early (code ${code}, signal ${signal}):\n${stderr}`)),
    )
  })
  ready.catch(() => {})

  // Never let the server (or its pipes) keep the parent's event loop alive.
  child.unref()
  child.stdin.unref?.()
  child.stdout.unref?.()
  child.stderr.unref?.()
  // Keep a handle on stdin so it isn't closed by GC; the python side exits on its EOF.
  child.stdin.on('error', () => {})

  let stopped = null
  const stop = () => {
    if (stopped) return stopped
    stopped = (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.ref() // keep the loop alive until the exit event arrives
        child.kill('SIGTERM')
        const timer = setTimeout(() => child.kill('SIGKILL'), 2000)
        timer.unref()
        await exited
        clearTimeout(timer)
      }
      child.stdin.destroy()
      child.stdout.destroy()
      child.stderr.destroy()
    })()
    return stopped
  }

  const deadline = Date.now() + timeoutMs
  try {
    let timer
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`S3 server did not print its ready line within ${timeoutMs} ms:\n${stderr}`)),
        timeoutMs,
      )
    })
    const endpoint = await Promise.race([ready, timeout]).finally(() => clearTimeout(timer))
    await waitForHttp(endpoint, child, deadline)
    return { endpoint, port, pid: child.pid, stop }
  } catch (err) {
    await stop()
    throw err
  }
}

/**
 * Create a bucket with a plain fetch PUT (no SigV4 signing needed: moto checks
 * no signature; FAKE_AUTH_HEADERS only marks the request as authenticated).
 * Succeeds if the bucket already exists and is owned by us.
 */
export async function createBucket(endpoint, bucket) {
  const res = await fetch(`${endpoint}/${encodeURIComponent(bucket)}`, { method: 'PUT', headers: FAKE_AUTH_HEADERS })
  const body = await res.text()
  if (res.ok) return
  if (res.status === 409 && /BucketAlreadyOwnedByYou/.test(body)) return
  throw new Error(`createBucket(${bucket}) failed: HTTP ${res.status} ${body}`)
}

/** Delete every object in a bucket, then the bucket (best effort). */
export async function deleteBucket(endpoint, bucket) {
  // Bounded: a key that cannot be deleted must not make this spin forever.
  for (let page = 0; page < 1000; page++) {
    const res = await fetch(`${endpoint}/${encodeURIComponent(bucket)}?list-type=2&max-keys=1000`, {
      headers: FAKE_AUTH_HEADERS,
    })
    const xml = await res.text()
    if (!res.ok) break
    const keys = [...xml.matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => decodeXml(m[1]))
    if (keys.length === 0) break
    for (const key of keys) {
      const del = await fetch(`${endpoint}/${encodeURIComponent(bucket)}/${encodeKey(key)}`, {
        method: 'DELETE',
        headers: FAKE_AUTH_HEADERS,
      })
      await del.arrayBuffer()
    }
  }
  const res = await fetch(`${endpoint}/${encodeURIComponent(bucket)}`, { method: 'DELETE', headers: FAKE_AUTH_HEADERS })
  await res.arrayBuffer()
}

function encodeKey(key) {
  return key.split('/').map(encodeURIComponent).join('/')
}

function decodeXml(s) {
  return s
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&#(\d+);/g, (_, n) => String.fromCodePoint(Number(n)))
    .replace(/&#x([0-9a-f]+);/gi, (_, n) => String.fromCodePoint(parseInt(n, 16)))
    .replace(/&amp;/g, '&')
}
