#!/usr/bin/env node
// Verify that the moto S3 test server (scripts/s3-server.py, single-threaded)
// gives us the S3 semantics the tests rely on: atomic conditional writes,
// DeleteObjects, ListObjectsV2 pagination, conditional DeleteObject, plus a
// few behavioural probes (ETag quoting, metadata, odd keys).
//
//   sh scripts/s3-venv.sh && node scripts/verify-s3-conditional.mjs [--bench]
//
// S3_ENDPOINT=http://127.0.0.1:PORT runs it against an already-running server
// instead of starting one (e.g. to compare with moto's stock threaded server).
// Exit code 0 iff every assertion passed.

import {
  S3Client,
  PutObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  ListObjectsV2Command,
} from '@aws-sdk/client-s3'
import { randomBytes } from 'node:crypto'
import { startS3Server, createBucket } from '../__test__/helpers/s3-server.mjs'

const BENCH = process.argv.includes('--bench')
const BUCKET = 'verify-conditional'

let failures = 0
const results = []
function check(name, ok, detail = '') {
  results.push({ name, ok, detail })
  if (!ok) failures++
  console.log(`${ok ? 'PASS' : 'FAIL'}  ${name}${detail ? `  -- ${detail}` : ''}`)
}

const errInfo = (e) => `${e?.$metadata?.httpStatusCode ?? '?'} ${e?.name ?? e?.Code ?? e}`

async function settle(promises) {
  const out = await Promise.allSettled(promises)
  const ok = out.filter((r) => r.status === 'fulfilled')
  const failed = out.filter((r) => r.status === 'rejected').map((r) => errInfo(r.reason))
  const byError = {}
  for (const f of failed) byError[f] = (byError[f] ?? 0) + 1
  return { ok, byError, out }
}

async function main() {
  let server = null
  let endpoint = process.env.S3_ENDPOINT
  if (!endpoint) {
    const t0 = performance.now()
    server = await startS3Server()
    endpoint = server.endpoint
    console.log(`server: ${endpoint} (pid ${server.pid}, started in ${(performance.now() - t0).toFixed(0)} ms)`)
  } else {
    console.log(`server: ${endpoint} (external)`)
  }

  const s3 = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    maxAttempts: 1, // no SDK retries: we count outcomes exactly
  })

  try {
    await createBucket(endpoint, BUCKET)
    await run(s3, endpoint)
    if (BENCH) await bench(s3)
  } finally {
    s3.destroy()
    if (server) await server.stop()
  }

  console.log(`\n${results.length - failures} passed, ${failures} failed`)
  process.exitCode = failures ? 1 : 0
}

async function run(s3, endpoint) {
  const put = (Key, Body, extra = {}) => s3.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body, ...extra }))

  // (a) If-None-Match: * create race --------------------------------------
  {
    const ROUNDS = 50
    const N = 32
    let exactlyOne = 0
    const errorTally = {}
    const t0 = performance.now()
    for (let round = 0; round < ROUNDS; round++) {
      const key = `race/create-${round}`
      const { ok, byError } = await settle(
        Array.from({ length: N }, (_, i) => put(key, `writer-${i}`, { IfNoneMatch: '*' })),
      )
      if (ok.length === 1) exactlyOne++
      for (const [k, v] of Object.entries(byError)) errorTally[k] = (errorTally[k] ?? 0) + v
    }
    const ms = performance.now() - t0
    check(
      `(a) IfNoneMatch:'*' race, ${N} writers x ${ROUNDS} rounds: exactly one winner every round`,
      exactlyOne === ROUNDS,
      `${exactlyOne}/${ROUNDS} rounds with one winner; losers: ${JSON.stringify(errorTally)}; ${ms.toFixed(0)} ms`,
    )
  }

  // (b) If-Match compare-and-swap race -------------------------------------
  {
    const ROUNDS = 20
    const N = 16
    let exactlyOne = 0
    let bodyMatchesWinner = 0
    const errorTally = {}
    for (let round = 0; round < ROUNDS; round++) {
      const key = `race/cas-${round}`
      const first = await put(key, 'v0')
      const bodies = Array.from({ length: N }, (_, i) => `cas-${round}-writer-${i}-${randomBytes(4).toString('hex')}`)
      const { ok, byError, out } = await settle(bodies.map((b) => put(key, b, { IfMatch: first.ETag })))
      if (ok.length === 1) exactlyOne++
      for (const [k, v] of Object.entries(byError)) errorTally[k] = (errorTally[k] ?? 0) + v
      const winner = out.findIndex((r) => r.status === 'fulfilled')
      const now = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))
      const body = await now.Body.transformToString()
      if (winner >= 0 && body === bodies[winner] && now.ETag === out[winner].value.ETag) bodyMatchesWinner++
    }
    check(
      `(b) IfMatch CAS race, ${N} writers x ${ROUNDS} rounds: exactly one winner, stored body/ETag = winner's`,
      exactlyOne === ROUNDS && bodyMatchesWinner === ROUNDS,
      `${exactlyOne}/${ROUNDS} one winner, ${bodyMatchesWinner}/${ROUNDS} body+etag match; losers: ${JSON.stringify(errorTally)}`,
    )
  }

  // (c) If-Match on a missing key -----------------------------------------
  {
    let status = 'no error'
    try {
      await put('missing/key', 'x', { IfMatch: '"0123456789abcdef0123456789abcdef"' })
    } catch (e) {
      status = errInfo(e)
    }
    check('(c) PutObject IfMatch on missing key is rejected', status !== 'no error', `moto returns: ${status}`)
    let status2 = 'no error'
    try {
      await put('missing/key2', 'x', { IfMatch: '*' })
    } catch (e) {
      status2 = errInfo(e)
    }
    check("(c') PutObject IfMatch:'*' on missing key is rejected", status2 !== 'no error', `moto returns: ${status2}`)
    // If-None-Match: * on existing key (for the record: status/code)
    await put('exists/key', 'x')
    let status3 = 'no error'
    try {
      await put('exists/key', 'y', { IfNoneMatch: '*' })
    } catch (e) {
      status3 = errInfo(e)
    }
    check("(c'') PutObject IfNoneMatch:'*' on existing key is rejected", status3 !== 'no error', `moto returns: ${status3}`)
  }

  // (d) DeleteObjects batch ------------------------------------------------
  {
    const keys = Array.from({ length: 10 }, (_, i) => `batch/k${i}`)
    await Promise.all(keys.map((k) => put(k, k)))
    const toDelete = [...keys.slice(0, 7), 'batch/does-not-exist']
    const res = await s3.send(
      new DeleteObjectsCommand({ Bucket: BUCKET, Delete: { Objects: toDelete.map((Key) => ({ Key })) } }),
    )
    const left = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'batch/' }))
    const leftKeys = (left.Contents ?? []).map((o) => o.Key)
    const deleted = (res.Deleted ?? []).map((d) => d.Key).sort()
    check(
      '(d) DeleteObjects batch removes the listed keys',
      JSON.stringify(leftKeys) === JSON.stringify(keys.slice(7)) && (res.Errors ?? []).length === 0,
      `Deleted=${deleted.length} (incl. missing key: ${deleted.includes('batch/does-not-exist')}), Errors=${(res.Errors ?? []).length}, remaining=${JSON.stringify(leftKeys)}`,
    )
    const quiet = await s3.send(
      new DeleteObjectsCommand({ Bucket: BUCKET, Delete: { Quiet: true, Objects: [{ Key: 'batch/k7' }] } }),
    )
    // Real S3 omits successful deletes in Quiet mode; moto lists them anyway.
    check('(d\') DeleteObjects Quiet:true (recorded; S3 returns no Deleted entries)', true,
      `Deleted=${JSON.stringify(quiet.Deleted ?? [])}`)
  }

  // (e) ListObjectsV2: prefix, StartAfter, MaxKeys pagination --------------
  {
    const keys = Array.from({ length: 25 }, (_, i) => `list/a/${String(i).padStart(3, '0')}`)
    await Promise.all([...keys.map((k) => put(k, 'x')), put('list/b/zzz', 'x'), put('list/a0', 'x')])
    // paginate with MaxKeys=4
    const seen = []
    let token
    let pages = 0
    let truncFlagsOk = true
    let keyCountOk = true
    do {
      const r = await s3.send(
        new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'list/a/', MaxKeys: 4, ContinuationToken: token }),
      )
      pages++
      const got = (r.Contents ?? []).map((o) => o.Key)
      if (r.KeyCount !== got.length) keyCountOk = false
      seen.push(...got)
      token = r.IsTruncated ? r.NextContinuationToken : undefined
      if (r.IsTruncated && !r.NextContinuationToken) truncFlagsOk = false
    } while (token && pages < 100)
    check(
      '(e) ListObjectsV2 Prefix + MaxKeys=4 pagination yields all keys, sorted, once',
      JSON.stringify(seen) === JSON.stringify(keys) && pages === 7 && truncFlagsOk && keyCountOk,
      `${seen.length} keys in ${pages} pages, KeyCount ok=${keyCountOk}`,
    )
    const sa = await s3.send(
      new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'list/a/', StartAfter: 'list/a/019', MaxKeys: 100 }),
    )
    const saKeys = (sa.Contents ?? []).map((o) => o.Key)
    check(
      '(e\') ListObjectsV2 StartAfter is exclusive',
      JSON.stringify(saKeys) === JSON.stringify(keys.slice(20)),
      JSON.stringify(saKeys),
    )
    // StartAfter + MaxKeys + continuation together
    const sa2 = []
    let t2
    let p2 = 0
    do {
      const r = await s3.send(
        new ListObjectsV2Command({
          Bucket: BUCKET,
          Prefix: 'list/a/',
          StartAfter: 'list/a/010',
          MaxKeys: 5,
          ContinuationToken: t2,
        }),
      )
      sa2.push(...(r.Contents ?? []).map((o) => o.Key))
      t2 = r.IsTruncated ? r.NextContinuationToken : undefined
      p2++
    } while (t2 && p2 < 100)
    check(
      '(e\'\') ListObjectsV2 StartAfter + MaxKeys=5 + ContinuationToken',
      JSON.stringify(sa2) === JSON.stringify(keys.slice(11)),
      `${sa2.length} keys in ${p2} pages`,
    )
    const delim = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'list/', Delimiter: '/' }))
    check(
      '(e\'\'\') ListObjectsV2 Delimiter returns CommonPrefixes',
      JSON.stringify((delim.CommonPrefixes ?? []).map((p) => p.Prefix)) === JSON.stringify(['list/a/', 'list/b/']),
      `CommonPrefixes=${JSON.stringify((delim.CommonPrefixes ?? []).map((p) => p.Prefix))} Contents=${JSON.stringify((delim.Contents ?? []).map((o) => o.Key))}`,
    )
    const empty = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'nothing-here/' }))
    check('(e\'\'\'\') ListObjectsV2 on empty prefix: no Contents, KeyCount 0', !empty.Contents && empty.KeyCount === 0,
      `Contents=${JSON.stringify(empty.Contents)} KeyCount=${empty.KeyCount}`)
  }

  // (f) DeleteObject If-Match ----------------------------------------------
  {
    const p = await put('del/k', 'v1')
    let wrong = 'deleted (If-Match ignored)'
    try {
      await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'del/k', IfMatch: '"ffffffffffffffffffffffffffffffff"' }))
    } catch (e) {
      wrong = errInfo(e)
    }
    const stillThere = await s3
      .send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'del/k' }))
      .then(() => true, () => false)
    check('(f) DeleteObject with wrong IfMatch is rejected and keeps the object', wrong !== 'deleted (If-Match ignored)' && stillThere,
      `moto returns: ${wrong}; object still there: ${stillThere}`)
    let right = 'ok'
    try {
      const r = await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'del/k', IfMatch: p.ETag }))
      right = `ok (${r.$metadata.httpStatusCode})`
    } catch (e) {
      right = errInfo(e)
    }
    const gone = await s3
      .send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'del/k' }))
      .then(() => false, () => true)
    check('(f\') DeleteObject with matching IfMatch deletes', right.startsWith('ok') && gone, `result: ${right}; gone: ${gone}`)
    let missing = 'ok'
    try {
      await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'del/missing', IfMatch: p.ETag }))
    } catch (e) {
      missing = errInfo(e)
    }
    let plainMissing = 'ok'
    try {
      const r = await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'del/missing' }))
      plainMissing = `ok (${r.$metadata.httpStatusCode})`
    } catch (e) {
      plainMissing = errInfo(e)
    }
    check('(f\'\') DeleteObject IfMatch on missing key / plain delete of missing key (recorded)', true,
      `IfMatch on missing: ${missing}; plain delete of missing: ${plainMissing}`)
    // concurrent conditional deletes: exactly one should win
    const p2 = await put('del/race', 'v')
    const { ok, byError } = await settle(
      Array.from({ length: 16 }, () => s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'del/race', IfMatch: p2.ETag }))),
    )
    check('(f\'\'\') 16 concurrent DeleteObject IfMatch: exactly one succeeds', ok.length === 1,
      `${ok.length} succeeded; others: ${JSON.stringify(byError)}`)
  }

  // (g) quirks probes -------------------------------------------------------
  {
    const p = await put('q/etag', 'hello')
    check('(g) PutObject ETag is quoted MD5', p.ETag === '"5d41402abc4b2a76b9719d911017c592"', `ETag=${p.ETag}`)
    let unquoted = 'ok'
    try {
      await put('q/etag', 'hello2', { IfMatch: p.ETag.replace(/"/g, '') })
    } catch (e) {
      unquoted = errInfo(e)
    }
    check('(g) IfMatch accepts an unquoted ETag too', unquoted === 'ok', unquoted)

    let etagNoneMatch = 'accepted'
    try {
      const cur = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'q/etag' }))
      await put('q/etag', 'hello3', { IfNoneMatch: cur.ETag })
    } catch (e) {
      etagNoneMatch = errInfo(e)
    }
    check('(g) PutObject IfNoneMatch:<current etag> (S3 only supports "*") (recorded)', true, `moto: ${etagNoneMatch}`)

    // metadata key case + underscore
    await put('q/meta', 'x', { Metadata: { CamelCase: 'A', lower: 'b', 'with_underscore': 'c', 'dash-key': 'd' } })
    const h = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'q/meta' }))
    check('(g) metadata keys come back lowercased', JSON.stringify(Object.keys(h.Metadata).sort()) ===
      JSON.stringify(['camelcase', 'dash-key', 'lower', 'with_underscore']), JSON.stringify(h.Metadata))

    // raw headers as seen on the wire
    const raw = await fetch(`${endpoint}/${BUCKET}/q/meta`, {
      method: 'HEAD',
      headers: { authorization: 'AWS4-HMAC-SHA256 Credential=test/20240101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00' },
    })
    const metaHeaders = [...raw.headers].filter(([k]) => k.startsWith('x-amz-meta-'))
    check('(g) raw HEAD x-amz-meta-* headers (recorded)', true, JSON.stringify(metaHeaders))

    // unsigned raw request on existing key
    const anon = await fetch(`${endpoint}/${BUCKET}/q/meta`)
    await anon.arrayBuffer()
    check('(g) unsigned GET of an existing key (recorded)', true, `HTTP ${anon.status} (moto treats no-Authorization as anonymous)`)

    // metadata size: S3 limit is 2 KB for user-defined metadata
    let big = 'accepted'
    try {
      await put('q/bigmeta', 'x', { Metadata: { big: 'v'.repeat(4096) } })
      const hb = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'q/bigmeta' }))
      big = `accepted, stored ${hb.Metadata.big?.length} chars`
    } catch (e) {
      big = errInfo(e)
    }
    check('(g) 4 KB of user metadata (S3 rejects > 2 KB) (recorded)', true, `moto: ${big}`)
    let huge = 'accepted'
    try {
      await put('q/hugemeta', 'x', { Metadata: Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`k${i}`, 'v'.repeat(7000)])) })
      huge = 'accepted (56 KB of metadata headers)'
    } catch (e) {
      huge = errInfo(e)
    }
    check('(g) 56 KB of user metadata across 8 headers (recorded)', true, `moto: ${huge}`)

    // non-ASCII metadata value
    let nonAscii
    try {
      await put('q/meta-utf8', 'x', { Metadata: { v: 'caf\u00e9' } })
      const hu = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'q/meta-utf8' }))
      nonAscii = `stored, read back as ${JSON.stringify(hu.Metadata.v)}`
    } catch (e) {
      nonAscii = `${errInfo(e)} ${e.message ?? ''}`.slice(0, 160)
    }
    check('(g) non-ASCII metadata value (recorded)', true, nonAscii)

    // odd keys
    const oddKeys = [
      'q/key=with=equals',
      'q/unicode-\u00e9\u4e2d\u6587-\ud83d\ude00',
      'q/space and+plus',
      'q/pct%20literal',
      'q/amp&q?mark#hash',
      'q/colon:semi;comma,',
      'q/tilde~star*quote\'',
      'q//double-slash',
      'q/trailing/',
    ]
    const oddRes = []
    let allOk = true
    for (const k of oddKeys) {
      try {
        await put(k, k)
        const g = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: k }))
        const body = await g.Body.transformToString()
        const l = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: k }))
        const listed = (l.Contents ?? []).some((o) => o.Key === k)
        const okk = body === k && listed
        if (!okk) allOk = false
        oddRes.push(`${JSON.stringify(k)}:${okk ? 'ok' : `body=${body === k} listed=${listed}`}`)
      } catch (e) {
        allOk = false
        oddRes.push(`${JSON.stringify(k)}:${errInfo(e)}`)
      }
    }
    check('(g) odd keys ("=", unicode, space, +, %, &?#, //, trailing /) round-trip PUT/GET/List', allOk, oddRes.join(' '))

    // Content-Type default / echo, Last-Modified resolution
    const ct = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'q/etag' }))
    check('(g) HeadObject fields (recorded)', true,
      `ContentType=${ct.ContentType} ContentLength=${ct.ContentLength} LastModified=${ct.LastModified?.toISOString()}`)
    // GET with If-None-Match -> 304
    let gnm
    try {
      await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'q/etag', IfNoneMatch: ct.ETag }))
      gnm = 'returned body'
    } catch (e) {
      gnm = errInfo(e)
    }
    check('(g) GetObject IfNoneMatch:<etag> (recorded)', true, `moto: ${gnm}`)
    // GET of missing key
    let nk
    try {
      await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'q/none' }))
    } catch (e) {
      nk = errInfo(e)
    }
    let hk
    try {
      await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'q/none' }))
    } catch (e) {
      hk = errInfo(e)
    }
    check('(g) missing key errors (recorded)', true, `GetObject: ${nk}; HeadObject: ${hk}`)
    // empty body
    const eb = await put('q/empty', '')
    const ge = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'q/empty' }))
    check('(g) empty object round-trips', (await ge.Body.transformToString()) === '' && ge.ContentLength === 0, `ETag=${eb.ETag}`)
  }
}

function fmtRate(n, ms) {
  return `${((n * 1000) / ms).toFixed(0)}/s (${n} in ${ms.toFixed(0)} ms)`
}

async function pool(n, concurrency, fn) {
  let next = 0
  const worker = async () => {
    while (next < n) {
      const i = next++
      await fn(i)
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
}

async function bench(s3) {
  console.log('\nbenchmarks (2 KB bodies, no metadata):')
  const body = randomBytes(1024).toString('hex') // 2048 bytes
  const put = (Key) => s3.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body: body }))
  const get = async (Key) => {
    const r = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key }))
    await r.Body.transformToByteArray()
  }
  // warm-up
  await pool(50, 4, (i) => put(`bench/warm/${i}`))

  let t = performance.now()
  await pool(300, 1, (i) => put(`bench/c1/${String(i).padStart(5, '0')}`))
  console.log(`  PutObject c=1 : ${fmtRate(300, performance.now() - t)}`)

  t = performance.now()
  await pool(1000, 32, (i) => put(`bench/list/${String(i).padStart(5, '0')}`))
  console.log(`  PutObject c=32: ${fmtRate(1000, performance.now() - t)}`)

  const tCond = performance.now()
  await pool(300, 1, (i) =>
    s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `bench/cond2/${i}`, Body: body, IfNoneMatch: '*' })),
  )
  console.log(`  PutObject IfNoneMatch:* c=1: ${fmtRate(300, performance.now() - tCond)}`)

  const lat = []
  for (let i = 0; i < 10; i++) {
    t = performance.now()
    const r = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'bench/list/', MaxKeys: 1000 }))
    lat.push(performance.now() - t)
    if (r.KeyCount !== 1000) throw new Error(`expected 1000 keys, got ${r.KeyCount}`)
  }
  lat.sort((a, b) => a - b)
  console.log(`  ListObjectsV2 1000 keys (prefix of ~2650 keys in bucket): median ${lat[5].toFixed(1)} ms, min ${lat[0].toFixed(1)} ms, max ${lat[9].toFixed(1)} ms`)

  const lat100 = []
  for (let i = 0; i < 10; i++) {
    t = performance.now()
    await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'bench/list/', MaxKeys: 100 }))
    lat100.push(performance.now() - t)
  }
  lat100.sort((a, b) => a - b)
  console.log(`  ListObjectsV2 MaxKeys=100 page: median ${lat100[5].toFixed(1)} ms`)

  t = performance.now()
  await pool(500, 1, (i) => get(`bench/list/${String(i % 1000).padStart(5, '0')}`))
  console.log(`  GetObject c=1 : ${fmtRate(500, performance.now() - t)}`)

  t = performance.now()
  await pool(1000, 32, (i) => get(`bench/list/${String(i % 1000).padStart(5, '0')}`))
  console.log(`  GetObject c=32: ${fmtRate(1000, performance.now() - t)}`)

  t = performance.now()
  await pool(500, 1, (i) => s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: `bench/list/${String(i % 1000).padStart(5, '0')}` })))
  console.log(`  HeadObject c=1: ${fmtRate(500, performance.now() - t)}`)
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
