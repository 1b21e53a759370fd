// Merges the runs of several `npm run bench` results (same machine) into one
// result, so medians and spreads cover every repeat; rewrites its summary and chart.
//   node bench/merge.mjs out.json a.json b.json ...
import { readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { renderChart } from './chart.mjs'
import { table } from './summary.mjs'

const [out, ...inputs] = process.argv.slice(2)
if (!out || inputs.length === 0) {
  console.error('usage: node bench/merge.mjs out.json a.json b.json ...')
  process.exit(2)
}
const results = inputs.map((f) => JSON.parse(readFileSync(f, 'utf8')))
const [first] = results
const runs = results.flatMap((r) => r.runs.map((run) => ({ ...run, from: r.date })))
const merged = { ...first, date: first.date, dates: results.map((r) => r.date), runs }
merged.summary = table(runs, first.workloads)
writeFileSync(out, JSON.stringify(merged, null, 2))
writeFileSync(join(dirname(out), 'benchmarks.svg'), renderChart(merged))
console.table(merged.summary)
