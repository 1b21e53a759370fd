// Shared benchmark plumbing: servers, databases for both plugins, measurement.
import { spawn } from 'node:child_process'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createBucket, startS3Server } from '../__test__/helpers/s3-server.mjs'

const require = createRequire(import.meta.url)
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
export const { EventualConsistencyPlugin: OurPlugin } = require('../index.js')
export const native = require('../binding.js')
export const { S3db } = await import('s3db.js/lite')
export const { EventualConsistencyPlugin: TheirPlugin } = await import('s3db.js/plugins/eventual-consistency/index')

export const BUCKET = 'bench'

/** moto, plus the counting proxy in its own process. */
export async function startServers() {
  const s3 = await startS3Server()
  await createBucket(s3.endpoint, BUCKET)
  const child = spawn(process.execPath, [join(ROOT, 'bench', 'proxy.mjs'), s3.endpoint], { stdio: ['pipe', 'pipe', 'inherit'] })
  const port = await new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      const m = /PROXY_READY (\d+)/.exec(String(d))
      if (m) resolve(Number(m[1]))
    })
    child.once('exit', (code) => reject(new Error(`proxy exited with ${code}`)))
  })
  const proxy = `http://127.0.0.1:${port}`
  return {
    proxy,
    connectionString: (prefix) => `http://bench:bench@127.0.0.1:${port}/${BUCKET}/${prefix}`,
    async counts() {
      return (await fetch(`${proxy}/__counts`)).json()
    },
    async reset() {
      await fetch(`${proxy}/__reset`, { method: 'POST' })
    },
    async stop() {
      child.stdin.end()
      child.kill()
      await s3.stop()
    },
  }
}

let prefixes = 0
/** A connected database on a fresh prefix; both plugins get the same s3db.js client settings. */
export async function database(servers) {
  const db = new S3db({
    connectionString: servers.connectionString(`run-${process.pid}-${Date.now()}-${prefixes++}`),
    logLevel: 'silent',
    clientOptions: { httpClientOptions: { useReckerHandler: false } },
    // s3db.js's task executor deadlocks its own S3Client.deleteObjects (which calls
    // exists() inside a pool slot): their consolidation then stalls 30 s at a time.
    executorPool: false,
  })
  await db.connect()
  await db.createResource({ name: 'wallets', attributes: { id: 'string|required', balance: 'number|default:0' } })
  return db
}

export const plugins = {
  theirs: {
    label: "s3db.js 21.6.2's plugin",
    async install(db) {
      const plugin = new TheirPlugin({ resources: { wallets: ['balance'] }, enableCoordinator: false, autoConsolidate: false, mode: 'async', enableAnalytics: true, logLevel: 'silent' })
      await db.usePlugin(plugin)
      return {
        plugin,
        add: (id, v) => db.resources.wallets.add(id, v),
        consolidateAll: () => plugin.consolidateAll(),
        dayAnalytics: (date) => plugin.getAnalytics('wallets', 'balance', { period: 'day', date }),
        stop: () => plugin.stop?.(),
      }
    },
  },
  ours: {
    label: 'this plugin (Rust core)',
    async install(db, extra = {}) {
      const plugin = new OurPlugin({ resource: 'wallets', field: 'balance', autoConsolidate: false, consolidationConcurrency: 10, enableAnalytics: true, ...extra })
      await db.usePlugin(plugin)
      return {
        plugin,
        add: (id, v) => db.resources.wallets.add(id, v),
        consolidateAll: () => plugin.runConsolidation(),
        dayAnalytics: (date) => plugin.getAnalytics('wallets', 'balance', { period: 'day', date }),
        stop: () => plugin.stop(),
      }
    },
  },
}

/** Runs `fn` and measures wall time, event-loop delay and peak RSS around it. */
export async function measure(fn) {
  const loop = monitorEventLoopDelay({ resolution: 1 })
  const rssStart = process.memoryUsage.rss()
  let rssPeak = rssStart
  const sampler = setInterval(() => {
    rssPeak = Math.max(rssPeak, process.memoryUsage.rss())
  }, 20)
  loop.enable()
  const t0 = performance.now()
  const result = await fn()
  const ms = performance.now() - t0
  loop.disable()
  clearInterval(sampler)
  rssPeak = Math.max(rssPeak, process.memoryUsage.rss())
  return {
    result,
    ms,
    loopP50: loop.percentile(50) / 1e6,
    loopP99: loop.percentile(99) / 1e6,
    rssPeakMb: rssPeak / 2 ** 20,
    rssGrowthMb: (rssPeak - rssStart) / 2 ** 20,
  }
}

/** `n` calls of `op(i)`, `concurrency` at a time. */
export async function pool(n, concurrency, op) {
  let next = 0
  const worker = async () => {
    while (next < n) await op(next++)
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker))
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

/** `{ median, min, max, n }` of one figure across repetitions. */
export function summarize(runs, key) {
  const xs = runs.map((r) => r[key])
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs), n: xs.length }
}
