// Codec conformance with s3db.js, in both directions, on both backends:
//   A. the plugin (Rust) writes transactions, plain s3db.js reads them;
//   B. plain s3db.js writes transactions, the plugin (Rust) reads them.
// On memory:// the core drives db.client through the JS bridge; on S3 it
// talks to the server itself, so the s3 runs check the bytes on the wire.
// S3DB_PKG=19 runs everything against s3db.js 19.5.10.
import test from 'ava'
import { backends, EventualConsistencyPlugin, S3DB_VERSION, stopS3Server, wallets } from './helpers/db.mjs'
import { FAKE_AUTH_HEADERS } from './helpers/s3-server.mjs'

test.after.always(stopS3Server)

const TX = 'wallets_transactions_balance'
const PARTITIONS = { byHour: 'cohortHour', byDay: 'cohortDate', byMonth: 'cohortMonth' }
const dataKey = (id) => `resource=${TX}/data/id=${id}`

const BIG_ASCII = 'x'.repeat(3000)
const BIG_UNICODE = 'ção 日本 👍!'.repeat(300) // 3000 UTF-16 units; no edge spaces (s3db.js trims those on insert/update)

// Values the plugin writes (§4 of notes/s3db-codec.md): base62 integer parts,
// decimals, and numbers JS prints in exponent form. Sources: everything the
// metadata escaping must get right. Timestamps span hours, days and months,
// given as ISO strings, Dates and epoch ms.
const CORPUS = [
  { op: 'add', value: 0, source: 'api' },
  { op: 'add', value: 1, source: '  padded  ' },
  { op: 'sub', value: 61, source: 'pão ção 日本', id: 'wallet ção' },
  { op: 'set', value: 62, source: 'emoji 👍🏽 ok 🎉', id: 'w:3 日本' },
  { op: 'sub', value: -5, source: 'u:abc' },
  { op: 'add', value: 2 ** 53 - 1, source: 'b:xyz' },
  { op: 'add', value: 0.1, source: 'd:c' },
  { op: 'sub', value: -12.5, source: 'null' },
  { op: 'set', value: 123.456, source: 'undefined' },
  { op: 'add', value: 1e-7, source: '100% of 50%' },
  { op: 'sub', value: 1.5e-7, source: 'a:b:c' },
  { op: 'add', value: 1e21, source: 'k=v;x==y' },
  { op: 'set', value: 1.5e21, source: '%3A%3D %:=' },
  { op: 'add', value: -2.5e300, source: BIG_ASCII },
  { op: 'add', value: 42, source: BIG_UNICODE },
  { op: 'sub', value: 7 },
  { op: 'add', value: 3, source: 'completed' },
  { op: 'add', value: 4, source: 'font/woff2' },
  { op: 'add', value: 5, source: 'line1\nline2\ttab' },
].map((e, i) => ({ ...e, id: e.id || `w${i}` }))

const TIMES = [
  '2024-03-05T14:07:09.123Z',
  '2024-03-05T14:59:59.999Z',
  '2024-03-05T15:00:00.000Z',
  new Date('2024-03-31T23:59:59.999Z'),
  Date.parse('2024-04-01T00:00:00.000Z'),
  '2024-04-01T00:00:00.001Z',
  () => Date.now() - 5000,
]

const cohorts = (iso) => ({ cohortHour: iso.slice(0, 13), cohortDate: iso.slice(0, 10), cohortMonth: iso.slice(0, 7) })

/** Attributes only: s3db.js adds `_v`, `_etag`, `_partitionValues`, … to what it reads. */
function visible(record) {
  return Object.fromEntries(Object.entries(record).filter(([k]) => !k.startsWith('_')))
}

/** What s3db.js should read for a transaction the plugin resolved with (absent source: no attribute). */
function asStored(tx, overrides = {}) {
  const out = { ...tx, ...overrides }
  if (out.source === null || out.source === undefined) delete out.source
  return out
}

function byId(list) {
  return Object.fromEntries(list.map((x) => [x.id, x]))
}

const sortedIds = (list) => list.map((x) => x.id).sort()

async function setup(t, backend, options = {}) {
  const db = await backend.db(t)
  const w = await wallets(db)
  const plugin = new EventualConsistencyPlugin({ resource: 'wallets', field: 'balance', cohort: { timezone: 'UTC' }, ...options })
  await db.usePlugin(plugin)
  const tx = db.resources[TX]
  t.truthy(tx, 'the plugin created the transaction resource')
  t.is(plugin.storeKind, backend.name === 's3' ? 's3' : 'bridge', 'the core talks to S3 itself only on the s3 backend')
  return { db, w, tx, plugin }
}

/** Writes CORPUS through the plugin; returns [entry, resolved transaction] pairs. */
async function writeCorpus(t, w) {
  const out = []
  for (const [i, e] of CORPUS.entries()) {
    const time = TIMES[i % TIMES.length]
    const timestamp = typeof time === 'function' ? time() : time
    const iso = new Date(timestamp).toISOString()
    const opts = { timestamp }
    if (e.source !== undefined) opts.source = e.source
    const r = await w[e.op](e.id, e.value, opts)
    t.deepEqual(
      r,
      {
        id: r.id,
        originalId: e.id,
        field: 'balance',
        value: e.value,
        operation: e.op,
        timestamp: iso,
        ...cohorts(iso),
        source: e.source === undefined ? null : e.source,
        applied: false,
      },
      `resolved transaction #${i}`,
    )
    out.push([e, r])
  }
  return out
}

/** The raw object as S3 holds it: `x-amz-meta-*` headers and body (moto, bypassing s3db.js). */
async function rawS3Object(db, key) {
  const c = db.client.config
  const path = [c.bucket, ...String(c.keyPrefix || '').split('/').filter(Boolean), ...key.split('/')].map(encodeURIComponent).join('/')
  const res = await fetch(`${c.endpoint}/${path}`, { headers: FAKE_AUTH_HEADERS })
  const body = await res.text()
  if (!res.ok) throw new Error(`GET ${key}: HTTP ${res.status} ${body}`)
  const meta = {}
  for (const [k, v] of res.headers) if (k.startsWith('x-amz-meta-')) meta[k.slice('x-amz-meta-'.length)] = v
  return { meta, body, contentType: res.headers.get('content-type') }
}

async function bodyText(res) {
  const b = res.Body
  if (!b) return ''
  if (typeof b === 'string') return b
  if (typeof b.transformToString === 'function') return b.transformToString()
  if (Buffer.isBuffer(b)) return b.toString('utf8')
  const chunks = []
  for await (const c of b) chunks.push(Buffer.from(c))
  return Buffer.concat(chunks).toString('utf8')
}

for (const backend of backends) {
  const name = (title) => `${title} (${backend.name}, s3db.js ${S3DB_VERSION})`

  // ----------------------------------------------------------------- A. Rust writes, s3db.js reads

  test(name('A: get(), list() and count() read every transaction field for field as add/sub/set resolved it'), async (t) => {
    const { w, tx } = await setup(t, backend, { lateArrivalStrategy: 'process' })
    const written = await writeCorpus(t, w)
    for (const [e, r] of written) {
      const got = await tx.get(r.id)
      t.deepEqual(visible(got), asStored(r), `get ${JSON.stringify(e.source)?.slice(0, 40)} / ${e.value}`)
      // Independent of what the plugin resolved with: the inputs themselves.
      t.is(got.value, e.value)
      t.is(got.source, e.source)
      t.is(got.operation, e.op)
      t.is(got.originalId, e.id)
    }
    const listed = await tx.list()
    t.deepEqual(sortedIds(listed), sortedIds(written.map(([, r]) => r)))
    const listedById = byId(listed)
    for (const [, r] of written) t.deepEqual(visible(listedById[r.id]), asStored(r), `list ${r.id}`)
    t.is(await tx.count(), CORPUS.length)
  })

  test(name('A: query({ cohortDate }) and listPartition(byDay|byHour|byMonth) find exactly the transactions of each cohort'), async (t) => {
    const { w, tx } = await setup(t, backend, { lateArrivalStrategy: 'process' })
    const all = (await writeCorpus(t, w)).map(([, r]) => r)
    const days = [...new Set(all.map((r) => r.cohortDate))]
    t.true(days.length >= 3, 'the corpus spans several days')
    for (const cohortDate of days) {
      const expected = all.filter((r) => r.cohortDate === cohortDate)
      const found = await tx.query({ cohortDate })
      t.deepEqual(sortedIds(found), sortedIds(expected), `query ${cohortDate}`)
      const foundById = byId(found)
      for (const r of expected) t.deepEqual(visible(foundById[r.id]), asStored(r), `query ${cohortDate} ${r.id}`)
    }
    for (const [partition, field] of Object.entries(PARTITIONS)) {
      const values = [...new Set(all.map((r) => r[field]))]
      t.true(values.length >= 3, `${partition}: several cohorts`)
      for (const value of values) {
        const expected = all.filter((r) => r[field] === value)
        const found = await tx.listPartition({ partition, partitionValues: { [field]: value } })
        t.deepEqual(sortedIds(found), sortedIds(expected), `${partition} ${value}`)
        const foundById = byId(found)
        for (const r of expected) t.deepEqual(visible(foundById[r.id]), asStored(r), `${partition} ${value} ${r.id}`)
        t.is(await tx.count({ partition, partitionValues: { [field]: value } }), expected.length, `count ${partition} ${value}`)
      }
    }
    // getFromPartition HEADs the reference key the plugin wrote.
    const one = all[2]
    t.deepEqual(visible(await tx.getFromPartition({ id: one.id, partitionName: 'byHour', partitionValues: { cohortHour: one.cohortHour } })), asStored(one))
  })

  test(name('A: after consolidate(id) s3db.js reads applied: true and every other field unchanged'), async (t) => {
    const { w, tx } = await setup(t, backend, { lateArrivalStrategy: 'process' })
    const written = await writeCorpus(t, w)
    for (const [e, r] of written) {
      // One transaction per record, starting from no record: the result is exact.
      const expected = e.op === 'set' ? e.value : e.op === 'add' ? 0 + e.value : 0 - e.value
      t.is(await w.consolidate(e.id), expected, `consolidate ${e.id}`)
      t.deepEqual(visible(await tx.get(r.id)), asStored(r, { applied: true }), `applied ${r.id}`)
    }
    const listed = await tx.list()
    t.is(listed.length, CORPUS.length, 'marking applied rewrote objects, it created none')
    t.true(listed.every((x) => x.applied === true))
    const day = written[0][1].cohortDate
    const inDay = await tx.listPartition({ partition: 'byDay', partitionValues: { cohortDate: day } })
    t.deepEqual(sortedIds(inDay), sortedIds(written.map(([, r]) => r).filter((r) => r.cohortDate === day)))
    t.true(inDay.every((x) => x.applied === true))
  })

  test(name('A: a 3000-character source overflows into a JSON body that s3db.js merges back'), async (t) => {
    const { db, w, tx } = await setup(t, backend)
    for (const source of [BIG_ASCII, BIG_UNICODE]) {
      const r = await w.add('w1', -0.5, { source })
      const raw = await db.client.getObject(dataKey(r.id))
      t.is(raw.Metadata._overflow, 'true')
      t.false('9' in raw.Metadata, 'source is not in the metadata')
      t.is(raw.Metadata['3'], '-0.5', 'small fields stay in the metadata')
      t.regex(String(raw.ContentType), /^application\/json/)
      t.deepEqual(JSON.parse(await bodyText(raw)), { 9: source })
      t.deepEqual(visible(await tx.get(r.id)), asStored(r))
      t.is((await tx.get(r.id)).source.length, 3000)
    }
  })

  test(name('A: strings s3db.js cannot round-trip itself (null, undefined, font/woff2) round-trip when the plugin writes them'), async (t) => {
    const { db, w, tx } = await setup(t, backend)
    const ts = new Date().toISOString()
    const base = { originalId: 'w9', field: 'balance', value: 1, operation: 'add', timestamp: ts, ...cohorts(ts), applied: false }
    // What s3db.js itself does with these (its bug, notes §4/§5): null, absent, 'failed'.
    const s3dbReads = { null: null, undefined: undefined, 'font/woff2': 'failed' }
    for (const [source, misread] of Object.entries(s3dbReads)) {
      const id = `s3db-${source.replace(/\W/g, '')}`
      await tx.insert({ id, ...base, source })
      t.is((await tx.get(id)).source, misread, `s3db.js's own write of ${source}`)
      const r = await w.add('w1', 1, { source })
      t.is((await tx.get(r.id)).source, source, `the plugin's write of ${source}`)
      t.deepEqual(visible(await tx.get(r.id)), asStored(r))
    }
    if (backend.name === 's3') {
      // On the wire: u:-escaped, as the spec's writer rule asks.
      const wire = {}
      for (const source of ['null', 'undefined', '  padded  ', 'pão']) {
        const r = await w.add('w1', 1, { source })
        wire[source] = (await rawS3Object(db, dataKey(r.id))).meta['9']
      }
      t.deepEqual(wire, { null: 'u:null', undefined: 'u:undefined', '  padded  ': 'u:%20%20padded%20%20', pão: 'u:p%C3%A3o' })
    }
    // '{…'/'[…' strings: s3db.js parses them as JSON on read whoever wrote them (not ours to fix);
    // the plugin itself keeps the string (read back by Rust through a keyed retry).
    const json = await w.add('w1', 1, { source: '{"a":1}', key: 'json-source' })
    t.deepEqual((await tx.get(json.id)).source, { a: 1 })
    t.is((await w.add('w1', 1, { source: '{"a":1}', key: 'json-source' })).source, '{"a":1}')
  })

  if (backend.name === 's3') {
    test(name('A: on the wire every metadata value is printable ASCII, numbers are s3db.js base62, within S3 limits'), async (t) => {
      const { db, w } = await setup(t, backend, { lateArrivalStrategy: 'process' })
      const written = await writeCorpus(t, w)
      const byValue = {}
      for (const [e, r] of written) {
        const raw = await rawS3Object(db, dataKey(r.id))
        for (const [k, v] of Object.entries(raw.meta)) {
          t.regex(v, /^(?:[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?)?$/, `${r.id} ${k}=${v.slice(0, 40)}`)
        }
        const bytes = Object.entries(raw.meta).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v), 0)
        t.true(bytes <= 2048, `${r.id}: ${bytes} metadata bytes`)
        t.is(raw.meta._v, 'v1')
        t.deepEqual(
          Object.keys(raw.meta).sort(),
          [...'12345678', ...(e.source === undefined || raw.meta._overflow ? [] : ['9']), 'a', '_v', ...(raw.meta._overflow ? ['_overflow'] : [])].sort(),
          `${r.id}: metadata keys`,
        )
        byValue[e.value] = raw.meta['3']
      }
      // Byte-identical to what s3db.js writes for the same numbers (notes §4).
      t.like(byValue, { 0: '0', 1: '1', 61: 'Z', 62: '10', '-5': '-5', [2 ** 53 - 1]: 'FfGNdXsE7', 0.1: '0.1', '-12.5': '-c.5', 123.456: '1Z.456' })
      // Where s3db.js's own form is lossy (1e-7 -> "") the plugin writes one JS decodes exactly.
      t.is(byValue[1e-7], '1.e-7')
    })
  }

  // ----------------------------------------------------------------- B. s3db.js writes, Rust reads

  test(name('B: getCohortStats reads transactions s3db.js inserted, field for field'), async (t) => {
    const { db, tx, plugin } = await setup(t, backend)
    const day = '2024-05-10'
    const at = (hh, mm = '00') => `${day}T${hh}:${mm}:00.000Z`
    const rows = [
      { op: 'add', value: 10, source: 'pão ção 日本', applied: true, ts: at('00') },
      { op: 'add', value: -12.5, source: 'emoji 👍🏽', applied: false, ts: at('03', '15') },
      { op: 'sub', value: 0.75, source: BIG_UNICODE, applied: false, ts: at('03', '59') },
      { op: 'sub', value: -3.25, source: 'completed', applied: true, ts: at('12') },
      { op: 'set', value: 100, source: 'u:abc', ts: at('18') }, // applied absent: pending
      { op: 'set', value: -0.5, applied: false, ts: at('23', '59'), noMonth: true }, // no source, no cohortMonth
      { op: 'add', value: 2 ** 40 + 0.5, source: '100% a:b=c', applied: false, ts: at('23', '59') },
    ]
    for (const [i, r] of rows.entries()) {
      const record = { id: `tx-${i}`, originalId: `w${i}`, field: 'balance', value: r.value, operation: r.op, timestamp: r.ts, ...cohorts(r.ts) }
      if (r.noMonth) delete record.cohortMonth
      if (r.source !== undefined) record.source = r.source
      if (r.applied !== undefined) record.applied = r.applied
      await tx.insert(record)
    }
    // The big source went to the body (s3db.js's own overflow), so Rust's body reading is exercised.
    t.is((await db.client.getObject(dataKey('tx-2'))).Metadata._overflow, 'true')
    const signed = (r) => (r.op === 'sub' ? -r.value : r.value)
    t.deepEqual(await plugin.getCohortStats(day), {
      date: day,
      transactionCount: rows.length,
      byOperation: { add: 3, sub: 2, set: 2 },
      totalValue: rows.reduce((s, r) => s + signed(r), 0), // exact in any order: dyadic values
      applied: 2,
      pending: 5,
    })
    t.like(await plugin.getCohortStats(new Date(`${day}T12:00:00Z`)), { date: day, transactionCount: rows.length })
    t.deepEqual(await plugin.getCohortStats('2024-05-11'), {
      date: '2024-05-11',
      transactionCount: 0,
      byOperation: { add: 0, sub: 0, set: 0 },
      totalValue: 0,
      applied: 0,
      pending: 0,
    })
  })

  test(name('B: numbers s3db.js encodes (base62, decimals, exponent forms) read back exactly'), async (t) => {
    const { tx, plugin } = await setup(t, backend)
    // One transaction per day, so totalValue is that one value, with no float sum in between.
    // (1e-7 is left out: s3db.js itself stores it as "" and reads back "".)
    const values = [0, 1, 61, 62, -5, 2 ** 53 - 1, 0.1, -12.5, 123.456, 1.5e-7, 1e21, 1.5e21, -2.5e300, 0.30000000000000004]
    const days = values.map((_, i) => `2023-01-${String(i + 1).padStart(2, '0')}`)
    for (const [i, value] of values.entries()) {
      const ts = `${days[i]}T10:20:30.400Z`
      const op = ['add', 'sub', 'set'][i % 3]
      await tx.insert({ id: `n${i}`, originalId: 'w1', field: 'balance', value, operation: op, timestamp: ts, ...cohorts(ts), source: 'api', applied: i % 2 === 0 })
      t.is((await tx.get(`n${i}`)).value, value, `s3db.js reads its own ${value}`)
    }
    for (const [i, value] of values.entries()) {
      const op = ['add', 'sub', 'set'][i % 3]
      const stats = await plugin.getCohortStats(days[i])
      t.deepEqual(
        stats,
        {
          date: days[i],
          transactionCount: 1,
          byOperation: { add: op === 'add' ? 1 : 0, sub: op === 'sub' ? 1 : 0, set: op === 'set' ? 1 : 0 },
          totalValue: op === 'sub' ? -value : value,
          applied: i % 2 === 0 ? 1 : 0,
          pending: i % 2 === 0 ? 0 : 1,
        },
        `${value}`,
      )
    }
  })

  test(name('B: a keyed retry reads the object s3db.js rewrote (update(), junk _* keys, overflow body, applied)'), async (t) => {
    const { db, w, tx } = await setup(t, backend)
    const edits = [
      ['k1', { value: 7, source: 'edited ção' }],
      ['k2', { value: -0.375, source: BIG_UNICODE }],
      ['k3', { value: 1.5e21, source: 'u:abc', applied: true }],
    ]
    for (const [key, edit] of edits) {
      const first = await w.add('w1', 5, { key })
      t.is((await w.add('w1', 5, { key })).id, first.id, 'same key, same transaction')
      await tx.update(first.id, edit)
      const raw = await db.client.getObject(dataKey(first.id))
      t.true(
        Object.keys(raw.Metadata).some((k) => k.startsWith('_') && !['_v', '_overflow'].includes(k)),
        `${key}: s3db.js's update() left its _* keys (${Object.keys(raw.Metadata).join(' ')})`,
      )
      if (edit.source === BIG_UNICODE) t.is(raw.Metadata._overflow, 'true', `${key}: s3db.js moved the source to the body`)
      t.deepEqual(visible(await tx.get(first.id)), asStored(first, edit), `${key}: s3db.js reads its edit`)
      const again = await w.add('w1', 5, { key })
      t.deepEqual(again, { ...first, applied: false, ...edit }, `${key}: the retry resolves with the object as s3db.js rewrote it`)
    }
  })

  // A keyed retry re-creates the entry from the object; consolidation reads keyed
  // transactions from their object and removes every entry of a transaction it applies.
  test(name('B: consolidate applies a transaction s3db.js edited once, with its edited value'), async (t) => {
    const { w, tx } = await setup(t, backend)
    // 7 sorts after the original entry's 5, 3 before it: both orders must apply once.
    for (const [id, edited] of [['w1', 7], ['w2', 3]]) {
      const first = await w.add(id, 5, { key: 'k1' })
      await tx.update(first.id, { value: edited, source: 'edited ção' })
      t.like(await w.add(id, 5, { key: 'k1' }), { id: first.id, value: edited, source: 'edited ção' })
      t.is(await w.consolidate(id), edited)
      t.is(await w.consolidate(id), edited, 'applied once')
      t.like(await tx.get(first.id), { value: edited, source: 'edited ção', applied: true })
    }
  })
}
