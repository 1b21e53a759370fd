// The side-by-side summary of benchmark runs: one row a measure, median and
// spread for each plugin, and the ratio ours/theirs.
import { summarize } from './lib.mjs'

/** The side-by-side rows (median, spread, ratio) of a set of runs. */
export function table(runs, workloads) {
  const rows = []
  const pick = (plugin, workload, match) => runs.filter((r) => r.plugin === plugin && r.workload === workload && Object.entries(match).every(([k, v]) => r[k] === v))
  const line = (label, ours, theirs, key, better) => {
    if (!ours.length) return
    const o = summarize(ours, key)
    const t = theirs.length ? summarize(theirs, key) : null
    const ratio = t ? o.median / t.median : null
    rows.push({
      measure: label,
      theirs: t ? `${fmt(t.median)} (${fmt(t.min)}–${fmt(t.max)}, n=${t.n})` : 'not run',
      ours: `${fmt(o.median)} (${fmt(o.min)}–${fmt(o.max)}, n=${o.n})`,
      'ours/theirs': ratio === null ? '' : `${ratio.toFixed(2)}x${better ? ` (${better(ratio)})` : ''}`,
    })
  }
  const faster = (r) => `${r >= 1 ? r.toFixed(1) : (1 / r).toFixed(1)}x ${r >= 1 ? 'more' : 'less'}`
  const fewer = (r) => `${(1 / r).toFixed(1)}x fewer`
  for (const c of workloads.adds.concurrency) {
    const m = { concurrency: c }
    line(`add() ops/s, concurrency ${c}`, pick('ours', 'add', m), pick('theirs', 'add', m), 'opsPerSec', faster)
    line(`add() requests/op, c=${c}`, pick('ours', 'add', m), pick('theirs', 'add', m), 'requestsPerOp', fewer)
    line(`add() event-loop p99 ms, c=${c}`, pick('ours', 'add', m), pick('theirs', 'add', m), 'loopP99')
    line(`raw PutObject ops/s, c=${c} (floor)`, pick('raw', 'put', m), [], 'opsPerSec')
  }
  for (const { n, records } of workloads.consolidation) {
    const m = { n, records }
    line(`consolidation ms, ${n} tx / ${records} records`, pick('ours', 'consolidation', m), pick('theirs', 'consolidation', m), 'ms', (r) => `${(1 / r).toFixed(1)}x faster`)
    line(`consolidation requests/tx, ${n}`, pick('ours', 'consolidation', m), pick('theirs', 'consolidation', m), 'requestsPerOp', fewer)
    line(`consolidation event-loop p99 ms, ${n}`, pick('ours', 'consolidation', m), pick('theirs', 'consolidation', m), 'loopP99')
    line(`consolidation peak RSS MB, ${n}`, pick('ours', 'consolidation', m), pick('theirs', 'consolidation', m), 'rssPeakMb')
    line(`analytics (one day) requests, after ${n}`, pick('ours', 'analytics-day', { n }), pick('theirs', 'analytics-day', { n }), 'requestsPerOp', fewer)
    line(`analytics (one day) ms, after ${n}`, pick('ours', 'analytics-day', { n }), pick('theirs', 'analytics-day', { n }), 'ms')
  }
  const capped = runs.find((r) => r.workload === 'consolidation-capped')
  if (capped) {
    const ours = runs.filter((r) => r.plugin === 'ours' && r.workload === 'consolidation' && r.n === capped.n)
    rows.push({
      measure: `consolidation ms, ${capped.n} tx / ${capped.records} records`,
      theirs: `> ${capped.ms} (not done after ${capped.ms / 60000} min; ${capped.requests.total} requests so far)`,
      ours: ours.length ? fmt(summarize(ours, 'ms').median) : 'not run',
      'ours/theirs': ours.length ? `< ${(summarize(ours, 'ms').median / capped.ms).toFixed(4)}x (> ${(capped.ms / summarize(ours, 'ms').median).toFixed(0)}x faster)` : '',
    })
  }
  const rss = runs.filter((r) => r.workload === 'rss')
  if (rss.length) {
    rows.push({ measure: `RSS growth MB consolidating ${rss[0].n} (memory://)`, theirs: 'not run', ours: fmt(rss[0].rssGrowthMb), 'ours/theirs': '' })
  }
  return rows
}

const fmt = (x) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2))
