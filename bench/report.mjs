// Prints the Markdown tables BENCHMARKS.md shows, from bench/results/*.json.
//   node bench/report.mjs [bench/results]
import { readFileSync, existsSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const dir = process.argv[2] || join(dirname(fileURLToPath(import.meta.url)), 'results')
const side = JSON.parse(readFileSync(join(dir, 'latest.json'), 'utf8'))
console.log(`Run of ${side.date} (${side.machine.cpus} cores, Node ${side.machine.node}${side.quick ? ', quick sizes' : ''}). Median (min–max, n runs).\n`)
console.log('| measure | s3db.js 21.6.2 plugin | this plugin | ours/theirs |')
console.log('|---|---|---|---|')
for (const r of side.summary) console.log(`| ${r.measure} | ${r.theirs} | ${r.ours} | ${r['ours/theirs']} |`)
const byType = (plugin, workload, match = {}) => side.runs.find((r) => r.plugin === plugin && r.workload === workload && Object.entries(match).every(([k, v]) => r[k] === v))
console.log('\nS3 requests by type, one run each (per operation: per add, per consolidated transaction):\n')
console.log('| workload | plugin | PUT | GET | HEAD | DELETE | DeleteObjects | LIST | per op |')
console.log('|---|---|---|---|---|---|---|---|---|')
const rows = [
  ['add, c=1', 'add', { concurrency: 1 }],
  ['add, c=32', 'add', { concurrency: 32 }],
  ...side.workloads.consolidation.map((w) => [`consolidation, ${w.n} tx`, 'consolidation', { n: w.n }]),
  ...side.workloads.consolidation.map((w) => [`one day's analytics after ${w.n}`, 'analytics-day', { n: w.n }]),
]
for (const [label, workload, match] of rows) {
  for (const plugin of ['theirs', 'ours']) {
    const r = byType(plugin, workload, match)
    if (!r) continue
    const q = r.requests
    console.log(`| ${label} | ${plugin} | ${q.PutObject} | ${q.GetObject} | ${q.HeadObject} | ${q.DeleteObject} | ${q.DeleteObjects} | ${q.ListObjectsV2} | ${r.requestsPerOp.toFixed(2)} |`)
  }
}
const an = join(dir, 'analytics.json')
if (existsSync(an)) {
  const a = JSON.parse(readFileSync(an, 'utf8'))
  console.log(`\nOne day's analytics vs reading that day's transactions (${a.date.slice(0, 10)}), median of 5:\n`)
  console.log('| Transactions | Direct scan (listPartition byDay) | getAnalytics | Speedup |')
  console.log('|---|---|---|---|')
  for (const r of a.rows) console.log(`| ${r.transactions.toLocaleString('en')} | ${r.scanMs.toFixed(0)} ms, ${r.scanRequests} requests | ${r.analyticsMs.toFixed(0)} ms, ${r.analyticsRequests} requests | ${r.speedup.toFixed(0)}x |`)
}
