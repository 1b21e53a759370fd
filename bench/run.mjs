// npm run bench (node --expose-gc bench/run.mjs): s3db.js 21.6.2's own EventualConsistencyPlugin and ours, side
// by side, in one process run, on one moto server behind a counting proxy.
//
//   BENCH_QUICK=1      small sizes (a smoke run)
//   BENCH_PEER_CAP_MIN time cap, in minutes, on their plugin's 1,000-transaction
//                      consolidation, run last (default 30; 0 skips it). Their
//                      consolidation lists every partition on every update, so it
//                      grows with the square of the backlog: 1,000 took over 45
//                      minutes here, 10,000 is out of reach.
//   BENCH_OUT=dir      where results go (default bench/results)
//   BENCH_REPEATS=n    at most n repeats of each measurement (a shorter full-size run)
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { database, measure, native, plugins, pool, startServers, BUCKET } from './lib.mjs'
import { renderChart } from './chart.mjs'
import { table } from './summary.mjs'

const HERE = dirname(fileURLToPath(import.meta.url))
const QUICK = process.env.BENCH_QUICK === '1'
const OUT = process.env.BENCH_OUT || join(HERE, 'results')
const MAX_REPEATS = Number(process.env.BENCH_REPEATS || Infinity)
const size = (full, quick) => (QUICK ? quick : full)
const repeats = (full, quick) => Math.min(size(full, quick), MAX_REPEATS)

const WORKLOADS = {
  adds: { n: size(2000, 200), records: 20, concurrency: [1, 32], repeats: { ours: repeats(3, 1), theirs: repeats(2, 1) } },
  consolidation: [
    { n: size(100, 50), records: 10, repeats: { ours: repeats(3, 1), theirs: repeats(3, 1) } },
    { n: size(1000, 100), records: 10, repeats: { ours: repeats(3, 1), theirs: 0 } },
    { n: size(10000, 400), records: size(100, 20), repeats: { ours: repeats(2, 1), theirs: 0 } },
  ],
  /** Their plugin at 1,000 transactions, last, under a time cap. */
  peerBig: { n: size(1000, 100), records: 10, capMinutes: Number(process.env.BENCH_PEER_CAP_MIN ?? 30) },
  raw: { n: size(2000, 200), concurrency: [1, 32], repeats: repeats(3, 1) },
  // RSS while consolidating a large backlog; on memory:// (seeding 100k on moto takes ~50 min).
  memory: { n: size(100000, 5000), records: 100 },
}

const runs = []
const log = (...a) => console.error(...a)
const started = new Date()

/** Results so far, written after every measurement so a long run that stops early keeps them. */
function save(summary = []) {
  mkdirSync(OUT, { recursive: true })
  const result = { date: started.toISOString(), quick: QUICK, machine: { cpus: cpus().length, node: process.version }, workloads: WORKLOADS, runs, summary }
  writeFileSync(join(OUT, 'latest.json'), JSON.stringify(result, null, 2))
  return result
}

function record(plugin, workload, params, m, requests, ops) {
  const r = {
    plugin,
    workload,
    ...params,
    ms: m.ms,
    opsPerSec: (ops / m.ms) * 1000,
    requests,
    requestsPerOp: requests.total / ops,
    loopP50: m.loopP50,
    loopP99: m.loopP99,
    rssPeakMb: m.rssPeakMb,
  }
  runs.push(r)
  save()
  log(`  ${plugin.padEnd(6)} ${workload} ${JSON.stringify(params)}: ${r.ms.toFixed(0)} ms, ${r.opsPerSec.toFixed(1)} ops/s, ${r.requestsPerOp.toFixed(2)} req/op, loop p99 ${r.loopP99.toFixed(1)} ms`)
  return r
}

async function addThroughput(servers, which, n, records, concurrency) {
  const db = await database(servers)
  const p = await plugins[which].install(db)
  await p.add('warmup', 1) // creates the transaction resource before the clock starts
  await servers.reset()
  const m = await measure(() => pool(n, concurrency, (i) => p.add(`w${i % records}`, (i % 7) + 1)))
  const requests = await servers.counts()
  await p.stop()
  await db.disconnect()
  return record(which, 'add', { n, records, concurrency }, m, requests, n)
}

async function consolidation(servers, which, n, records) {
  const db = await database(servers)
  const p = await plugins[which].install(db)
  log(`  ${which}: seeding ${n} pending transactions over ${records} records`)
  await pool(n, 16, (i) => p.add(`w${i % records}`, (i % 7) + 1))
  await servers.reset()
  const m = await measure(() => p.consolidateAll())
  const requests = await servers.counts()
  const r = record(which, 'consolidation', { n, records }, m, requests, n)
  save()
  // Correctness check on the way: every record holds its sum.
  const expected = new Map()
  for (let i = 0; i < n; i++) expected.set(`w${i % records}`, (expected.get(`w${i % records}`) ?? 0) + (i % 7) + 1)
  const wrong = []
  for (const [id, v] of expected) if ((await db.resources.wallets.get(id)).balance !== v) wrong.push(id)
  r.wrongRecords = wrong.length
  // One day's analytics right after.
  const date = new Date().toISOString().slice(0, 10)
  await servers.reset()
  let rows
  const q = await measure(async () => (rows = await p.dayAnalytics(date)))
  const qRequests = await servers.counts()
  runs.push({ plugin: which, workload: 'analytics-day', n, records, ms: q.ms, requests: qRequests, requestsPerOp: qRequests.total, rows: rows?.length ?? 0, count: rows?.[0]?.count })
  log(`  ${which.padEnd(6)} analytics-day after ${n}: ${q.ms.toFixed(0)} ms, ${qRequests.total} requests, count=${rows?.[0]?.count}`)
  await p.stop()
  await db.disconnect()
  return r
}

async function rawPuts(servers, n, concurrency) {
  const spec = { kind: 's3', endpoint: servers.proxy, region: 'us-east-1', bucket: BUCKET, accessKeyId: 'bench', secretAccessKey: 'bench', forcePathStyle: true, keyPrefix: `raw-${Date.now()}` }
  await servers.reset()
  // The size of a transaction object: its metadata, ~190 bytes.
  const m = await measure(() => native.benchPutObjects(JSON.stringify(spec), 'raw', n, concurrency, 190))
  const requests = await servers.counts()
  return record('raw', 'put', { n, concurrency }, m, requests, n)
}

async function rssGrowth(n, records) {
  const { S3db } = await import('s3db.js/lite')
  const db = new S3db({ connectionString: `memory://bench-rss-${Date.now()}/app`, logLevel: 'silent' })
  await db.connect()
  await db.createResource({ name: 'wallets', attributes: { id: 'string|required', balance: 'number|default:0' } })
  const p = await plugins.ours.install(db, { enableAnalytics: false })
  log(`  ours: seeding ${n} pending transactions over ${records} records on memory://`)
  await pool(n, 64, (i) => p.add(`w${i % records}`, 1))
  global.gc?.()
  const m = await measure(() => p.consolidateAll())
  const r = { plugin: 'ours', workload: 'rss', n, records, ms: m.ms, opsPerSec: (n / m.ms) * 1000, rssGrowthMb: m.rssGrowthMb, rssPeakMb: m.rssPeakMb, loopP99: m.loopP99 }
  runs.push(r)
  log(`  ours   consolidation of ${n} on memory://: ${m.ms.toFixed(0)} ms, RSS growth ${m.rssGrowthMb.toFixed(1)} MB (peak ${m.rssPeakMb.toFixed(0)} MB)`)
  await p.stop()
  await db.disconnect()
}


const servers = await startServers()
try {
  for (const c of WORKLOADS.raw.concurrency) for (let i = 0; i < WORKLOADS.raw.repeats; i++) await rawPuts(servers, WORKLOADS.raw.n, c)
  for (const c of WORKLOADS.adds.concurrency) {
    for (const which of ['theirs', 'ours']) {
      for (let i = 0; i < WORKLOADS.adds.repeats[which]; i++) await addThroughput(servers, which, WORKLOADS.adds.n, WORKLOADS.adds.records, c)
    }
  }
  for (const w of WORKLOADS.consolidation) {
    for (const which of ['theirs', 'ours']) {
      for (let i = 0; i < w.repeats[which]; i++) await consolidation(servers, which, w.n, w.records)
    }
  }
  await rssGrowth(WORKLOADS.memory.n, WORKLOADS.memory.records)
  const big = WORKLOADS.peerBig
  if (big.capMinutes > 0) {
    // Their consolidation cannot be cancelled: it goes last, and the process exits after it.
    const cap = new Promise((resolve) => setTimeout(resolve, big.capMinutes * 60_000, 'capped'))
    const done = consolidation(servers, 'theirs', big.n, big.records)
    if ((await Promise.race([done, cap])) === 'capped') {
      runs.push({ plugin: 'theirs', workload: 'consolidation-capped', n: big.n, records: big.records, ms: big.capMinutes * 60_000, requests: await servers.counts() })
      log(`  theirs consolidation of ${big.n} not done after ${big.capMinutes} min`)
    }
  }
} finally {
  await servers.stop()
}

const summary = table(runs, WORKLOADS)
console.table(summary)
const result = save(summary)
writeFileSync(join(OUT, 'benchmarks.svg'), renderChart(result))
log(`results: ${join(OUT, 'latest.json')}, chart: ${join(OUT, 'benchmarks.svg')}`)
process.exit(0) // a capped consolidation of theirs may still be running
