// Renders benchmark results as a self-contained SVG bar chart (no dependencies).
import { median } from './lib.mjs'

const COLORS = { theirs: '#d9822b', ours: '#2b7bd9', raw: '#7a7a7a' }

function groups(result) {
  const by = (plugin, workload, match) =>
    result.runs.filter((r) => r.plugin === plugin && r.workload === workload && Object.entries(match).every(([k, v]) => r[k] === v))
  const value = (runs, key) => (runs.length ? median(runs.map((r) => r[key])) : null)
  const out = []
  for (const c of result.workloads.adds.concurrency) {
    out.push({ title: `add() ops/s, concurrency ${c}`, bars: [['theirs', value(by('theirs', 'add', { concurrency: c }), 'opsPerSec')], ['ours', value(by('ours', 'add', { concurrency: c }), 'opsPerSec')], ['raw', value(by('raw', 'put', { concurrency: c }), 'opsPerSec')]] })
  }
  for (const { n, records } of result.workloads.consolidation) {
    out.push({ title: `consolidation tx/s, ${n} tx / ${records} records`, bars: [['theirs', value(by('theirs', 'consolidation', { n, records }), 'opsPerSec')], ['ours', value(by('ours', 'consolidation', { n, records }), 'opsPerSec')]] })
    out.push({ title: `S3 requests per consolidated tx, ${n}`, bars: [['theirs', value(by('theirs', 'consolidation', { n, records }), 'requestsPerOp')], ['ours', value(by('ours', 'consolidation', { n, records }), 'requestsPerOp')]], lowerIsBetter: true })
  }
  return out.map((g) => ({ ...g, bars: g.bars.filter(([, v]) => v !== null) })).filter((g) => g.bars.length)
}

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;')
const fmt = (x) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2))

export function renderChart(result) {
  const gs = groups(result)
  const rowH = 22
  const gap = 18
  const labelW = 70
  const barW = 460
  const width = labelW + barW + 120
  let y = 40
  const parts = []
  for (const g of gs) {
    parts.push(`<text x="10" y="${y}" font-weight="bold">${esc(g.title)}${g.lowerIsBetter ? ' (lower is better)' : ''}</text>`)
    y += 8
    const max = Math.max(...g.bars.map(([, v]) => v))
    for (const [who, v] of g.bars) {
      const w = Math.max(1, (v / max) * barW)
      parts.push(`<text x="10" y="${y + 15}">${who}</text>`)
      parts.push(`<rect x="${labelW}" y="${y + 2}" width="${w.toFixed(1)}" height="${rowH - 6}" fill="${COLORS[who]}"/>`)
      parts.push(`<text x="${labelW + w + 6}" y="${y + 15}">${fmt(v)}</text>`)
      y += rowH
    }
    y += gap
  }
  const title = `s3db.js 21.6.2's plugin vs this plugin, moto single-threaded, ${result.date.slice(0, 10)}${result.quick ? ' (quick)' : ''}`
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" font-family="sans-serif" font-size="13">
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="20" font-size="14">${esc(title)}</text>
${parts.join('\n')}
</svg>
`
}
