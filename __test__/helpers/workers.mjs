// Multi-process test helpers: worker processes (fixtures/worker.mjs) driven over
// IPC, and signals (SIGKILL, SIGSTOP/SIGCONT). The fault proxy is in fault-proxy.mjs.
//
//   const pool = workerPool(t)                       // every worker is killed in teardown
//   const w = await pool.spawn({ connectionString, plugin: { lockHeartbeat: 1 } })
//   await w.call('add', 'r1', 5, { key: 'k1' })
//   w.kill()                                          // SIGKILL; pending calls reject with WORKER_EXITED

import { fork } from 'node:child_process'
import { EventEmitter } from 'node:events'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const WORKER = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'worker.mjs')

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** Rejects after `ms` with `what` in the message. */
export function withTimeout(promise, ms, what = 'operation') {
  let timer
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms)
    }),
  ]).finally(() => clearTimeout(timer))
}

/** Polls `fn` until it returns a truthy value. */
export async function waitUntil(fn, { timeout = 10_000, interval = 25, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`${what} not reached within ${timeout} ms`)
    await sleep(interval)
  }
}

/** A deterministic PRNG (mulberry32), so a failing run can be replayed with its seed. */
export function rng(seed) {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
  next.int = (lo, hi) => lo + Math.floor(next() * (hi - lo + 1))
  next.pick = (arr) => arr[Math.floor(next() * arr.length)]
  next.seed = seed >>> 0
  return next
}

export class WorkerExited extends Error {
  constructor(worker, how) {
    super(`worker ${worker.name} (pid ${worker.pid}) exited (${how}) before answering`)
    this.code = 'WORKER_EXITED'
  }
}

let nextWorker = 0

/**
 * One child process. `call(cmd, ...args)` resolves with the result or rejects with
 * an Error carrying the child's `code`. Events from the child are emitted on `events`
 * (`record-write`, `plugin`, ...); `exited` resolves with { code, signal }.
 */
export class Worker {
  constructor(child, name) {
    this.child = child
    this.pid = child.pid
    this.name = name
    this.events = new EventEmitter()
    this.events.setMaxListeners(100)
    this.pending = new Map()
    this.nextId = 0
    this.stderr = ''
    this.alive = true
    this.stopped = false
    this.exitInfo = null
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.alive = false
        this.exitInfo = { code, signal }
        const how = signal ? `signal ${signal}` : `code ${code}`
        for (const { reject } of this.pending.values()) reject(new WorkerExited(this, how))
        this.pending.clear()
        this.events.emit('exit', this.exitInfo)
        resolve(this.exitInfo)
      })
    })
    child.on('error', () => {})
    child.stderr?.setEncoding('utf8')
    child.stderr?.on('data', (d) => {
      this.stderr = (this.stderr + d).slice(-8192)
      if (process.env.EC_WORKER_DEBUG) process.stderr.write(`[${name}] ${d}`)
    })
    child.stdout?.setEncoding('utf8')
    child.stdout?.on('data', (d) => {
      if (process.env.EC_WORKER_DEBUG) process.stdout.write(`[${name}] ${d}`)
    })
    child.on('message', (msg) => {
      if (msg && msg.id !== undefined && this.pending.has(msg.id)) {
        const { resolve, reject } = this.pending.get(msg.id)
        this.pending.delete(msg.id)
        if (msg.ok) resolve(msg.result)
        else reject(Object.assign(new Error(msg.error?.message ?? 'worker error'), { code: msg.error?.code, workerName: msg.error?.name }))
      } else if (msg && msg.event) {
        this.events.emit(msg.event, msg)
      }
    })
  }

  /** Sends a command; the promise settles with the child's reply or its death. */
  call(cmd, ...args) {
    if (!this.alive) return Promise.reject(new WorkerExited(this, 'already dead'))
    const id = ++this.nextId
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject })
      try {
        this.child.send({ id, cmd, args }, (err) => {
          if (err && this.pending.has(id)) {
            this.pending.delete(id)
            reject(new WorkerExited(this, `send failed: ${err.message}`))
          }
        })
      } catch (e) {
        this.pending.delete(id)
        reject(new WorkerExited(this, `send failed: ${e.message}`))
      }
    })
  }

  /** The next event `name` whose message satisfies `predicate`. */
  next(name, predicate = () => true, timeout = 30_000) {
    return new Promise((resolve, reject) => {
      const onEvent = (msg) => {
        if (!predicate(msg)) return
        cleanup()
        resolve(msg)
      }
      const onExit = () => {
        cleanup()
        reject(new WorkerExited(this, `while waiting for ${name}`))
      }
      const timer = setTimeout(() => {
        cleanup()
        reject(new Error(`${this.name}: no ${name} event within ${timeout} ms`))
      }, timeout)
      const cleanup = () => {
        clearTimeout(timer)
        this.events.off(name, onEvent)
        this.events.off('exit', onExit)
      }
      this.events.on(name, onEvent)
      if (!this.alive) return onExit()
      this.events.once('exit', onExit)
    })
  }

  /** Sends a signal (default SIGKILL); resolves once the process is gone for SIGKILL/SIGTERM. */
  async kill(signal = 'SIGKILL') {
    if (!this.alive) return this.exitInfo
    this.signalled = true
    if (this.stopped) this.signal('SIGCONT')
    try {
      this.child.kill(signal)
    } catch {
      // Already gone.
    }
    return this.exited
  }

  signal(sig) {
    if (!this.alive) return false
    this.signalled = true
    try {
      process.kill(this.pid, sig)
    } catch {
      return false
    }
    if (sig === 'SIGSTOP') this.stopped = true
    if (sig === 'SIGCONT') this.stopped = false
    return true
  }

  pause() {
    return this.signal('SIGSTOP')
  }

  resume() {
    return this.signal('SIGCONT')
  }

  /** Ends the session (plugin.stop waits for a run in flight, disconnect); SIGKILL if that takes over `ms`. */
  async close(ms = 10_000) {
    if (!this.alive) return false
    try {
      return await withTimeout(this.call('close'), ms, `${this.name} close`)
    } catch {
      await this.kill()
      return false
    }
  }

  /** Graceful exit (plugin.stop, disconnect), SIGKILL after `ms`. */
  async exit(ms = 5000) {
    if (!this.alive) return this.exitInfo
    this.call('exit').catch(() => {})
    const timer = setTimeout(() => this.kill(), ms)
    try {
      return await this.exited
    } finally {
      clearTimeout(timer)
    }
  }
}

/** Forks fixtures/worker.mjs idle (modules loaded, no Database yet); resolves once it says so. */
async function forkIdle(name, env = {}, readyTimeout = 60_000) {
  const child = fork(WORKER, [], {
    env: { ...process.env, EC_WORKER_NAME: name, EC_WORKER_CONNECTION: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    serialization: 'json',
  })
  const w = new Worker(child, name)
  live.add(w)
  w.exited.then(() => live.delete(w))
  try {
    await w.next('idle', () => true, readyTimeout)
  } catch (e) {
    await w.kill()
    throw new Error(`${name} did not start: ${e.message}\n${w.stderr}`)
  }
  return w
}

// Idle processes from earlier tests of this file, ready for another session: a start
// costs a second or two of CPU (importing s3db.js), which adds up on two cores.
// EC_WORKER_REUSE=0 turns reuse off. Only a process that was never signalled and has
// nothing in flight goes back (see workerPool's teardown); every Database and plugin is
// new per session, so a reused process shares nothing with the test before but the
// loaded modules.
const idle = []
const live = new Set()
const REUSE = process.env.EC_WORKER_REUSE !== '0'

// A test process that ends without its hooks (a crash) still takes its workers along:
// they exit on the IPC channel's 'disconnect'; this catches a normal exit too.
process.on('exit', () => {
  for (const w of live) {
    try {
      process.kill(w.pid, 'SIGKILL')
    } catch {
      // gone
    }
  }
})

/**
 * A worker with a Database on `connectionString` and the plugin (options `plugin`)
 * on `wallets.balance`: an idle process from earlier tests if there is one, else a new one.
 * @param {{ connectionString: string, plugin?: object, name?: string, env?: object, readyTimeout?: number, fresh?: boolean }} opts
 */
export async function spawnWorker({ connectionString, plugin = {}, name, env = {}, readyTimeout = 60_000, fresh = false }) {
  const workerName = name || `w${++nextWorker}`
  let w = null
  if (REUSE && !fresh && Object.keys(env).length === 0) {
    while (idle.length && !w) {
      const candidate = idle.shift()
      if (candidate.alive) w = candidate
    }
  }
  if (!w) w = await forkIdle(workerName, env, readyTimeout)
  w.name = workerName
  try {
    const opened = await withTimeout(w.call('open', connectionString, plugin, workerName), readyTimeout, `${workerName} open`)
    w.s3db = opened.s3db
  } catch (e) {
    await w.kill()
    throw new Error(`${workerName} could not open ${connectionString}: ${e.message}\n${w.stderr}`)
  }
  w.signalled = false
  return w
}

/** Closes the worker's session and parks the process for reuse, or kills it. */
async function recycle(w) {
  if (!w.alive) return
  if (!REUSE || w.signalled || w.pending.size > 0) return w.kill()
  try {
    await withTimeout(w.call('close'), 10_000, `${w.name} close`)
    w.events.removeAllListeners()
    w.events.setMaxListeners(100)
    idle.push(w)
  } catch {
    await w.kill()
  }
}

/** Kills every idle process (test.after.always). */
export async function shutdownWorkers() {
  await Promise.all([...live].map((w) => w.kill()))
  idle.length = 0
}

/**
 * A set of workers bound to a test. In teardown, a worker that was signalled
 * (SIGKILL/SIGSTOP/SIGCONT) or still has a call in flight is SIGKILLed and waited
 * for; the others close their Database and wait, idle, for a later test of the same
 * file (shutdownWorkers() in test.after.always kills those).
 */
export function workerPool(t) {
  const all = new Set()
  const pool = {
    all,
    async spawn(opts) {
      const w = await spawnWorker(opts)
      all.add(w)
      return w
    },
    /** `n` workers, started at most `parallel` at a time (each start is CPU-heavy). */
    async spawnMany(n, opts, parallel = 4) {
      const out = new Array(n)
      let next = 0
      const lane = async () => {
        while (next < n) {
          const i = next++
          out[i] = await pool.spawn({ ...opts, name: opts.name ? `${opts.name}${i}` : undefined })
        }
      }
      await Promise.all(Array.from({ length: Math.min(parallel, n) }, lane))
      return out
    },
    alive() {
      return [...all].filter((w) => w.alive)
    },
    async killAll() {
      await Promise.all([...all].map((w) => w.kill()))
    },
  }
  t.teardown(() => Promise.all([...all].map((w) => recycle(w))))
  return pool
}

/** Every process still alive from `pids`. */
export function alivePids(pids) {
  return pids.filter((pid) => {
    try {
      process.kill(pid, 0)
      return true
    } catch {
      return false
    }
  })
}

/** Host and port of the S3 server behind a `http://key:secret@host:port/bucket/prefix` connection string. */
export function endpointOf(connectionString) {
  const u = new URL(connectionString)
  return `http://${u.host}`
}

/** Bucket and prefix of a connection string. */
export function bucketAndPrefix(connectionString) {
  const [bucket, ...prefix] = new URL(connectionString).pathname.replace(/^\//, '').split('/')
  return { bucket, prefix: prefix.join('/') }
}
