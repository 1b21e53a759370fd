// wire-dump.mjs — run s3db.js against a tiny in-process fake S3 HTTP server and
// print exactly what goes on the wire (method, path, x-amz-meta-* headers, content-type, body).
// Run from /work/main:   node docs/research/wire-dump.mjs [21|19]
// The fake server implements just enough of S3 (PUT/GET/HEAD/DELETE object, ListObjectsV2,
// DeleteObjects) for s3db.js to work. Nothing leaves 127.0.0.1.
import http from 'node:http';

const store = new Map(); // key (decoded, without bucket) -> { headers, body:Buffer }
const log = [];

function decodeAwsChunked(buf) {
  // aws-chunked: "<hex>;chunk-signature=...\r\n<data>\r\n ... 0\r\n<trailers>\r\n\r\n"  (signature part optional)
  const out = [];
  let i = 0;
  while (i < buf.length) {
    const nl = buf.indexOf('\r\n', i);
    if (nl < 0) break;
    const size = parseInt(buf.slice(i, nl).toString().split(';')[0], 16);
    if (!size) break;
    out.push(buf.slice(nl + 2, nl + 2 + size));
    i = nl + 2 + size + 2;
  }
  return Buffer.concat(out);
}

function xmlEsc(s) { return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;'); }

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    let body = Buffer.concat(chunks);
    const url = new URL(req.url, 'http://x');
    const [, bucket, ...rest] = url.pathname.split('/');
    const key = decodeURIComponent(rest.join('/'));
    const meta = Object.fromEntries(Object.entries(req.headers).filter(([k]) => k.startsWith('x-amz-meta-')));
    const isChunked = (req.headers['content-encoding'] || '').includes('aws-chunked') || (req.headers['x-amz-content-sha256'] || '').startsWith('STREAMING');
    if (isChunked) body = decodeAwsChunked(body);
    const entry = { method: req.method, rawPath: req.url, bucket, key };
    if (req.method === 'PUT') {
      const otherHeaders = Object.fromEntries(Object.entries(req.headers).filter(([k]) => !k.startsWith('x-amz-meta-') && !['authorization', 'host', 'user-agent', 'x-amz-user-agent', 'amz-sdk-invocation-id', 'amz-sdk-request', 'x-amz-date', 'connection'].includes(k)));
      Object.assign(entry, { otherHeaders, meta, contentType: req.headers['content-type'], contentEncoding: req.headers['content-encoding'], ifNoneMatch: req.headers['if-none-match'], body: body.toString('utf8').slice(0, 200) });
    }
    log.push(entry);
    if (req.method === 'PUT' && !url.searchParams.has('x-id') || (req.method === 'PUT' && url.searchParams.get('x-id') === 'PutObject')) {
      if (req.headers['if-none-match'] === '*' && store.has(key)) {
        res.writeHead(412, { 'content-type': 'application/xml' });
        return res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message></Error>');
      }
      const headers = { ...meta };
      if (req.headers['content-type']) headers['content-type'] = req.headers['content-type'];
      store.set(key, { headers, body });
      res.writeHead(200, { ETag: '"etag-' + body.length + '"' });
      return res.end();
    }
    if ((req.method === 'GET' || req.method === 'HEAD') && key) {
      const o = store.get(key);
      if (!o) {
        res.writeHead(404, { 'content-type': 'application/xml' });
        return res.end(req.method === 'HEAD' ? undefined : '<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>');
      }
      res.writeHead(200, { ...o.headers, 'content-length': o.body.length, ETag: '"etag-' + o.body.length + '"', 'last-modified': new Date().toUTCString() });
      return res.end(req.method === 'HEAD' ? undefined : o.body);
    }
    if (req.method === 'GET' && url.searchParams.get('list-type') === '2') {
      const prefix = url.searchParams.get('prefix') || '';
      const max = parseInt(url.searchParams.get('max-keys') || '1000', 10);
      const start = url.searchParams.get('continuation-token') || '';
      const keys = [...store.keys()].filter((k) => k.startsWith(prefix) && k > start).sort();
      const page = keys.slice(0, max);
      const truncated = keys.length > page.length;
      const xml = `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>${bucket}</Name><Prefix>${xmlEsc(prefix)}</Prefix><KeyCount>${page.length}</KeyCount><MaxKeys>${max}</MaxKeys><IsTruncated>${truncated}</IsTruncated>${truncated ? `<NextContinuationToken>${xmlEsc(page[page.length - 1])}</NextContinuationToken>` : ''}${page.map((k) => `<Contents><Key>${xmlEsc(k)}</Key><Size>${store.get(k).body.length}</Size><ETag>"x"</ETag><LastModified>2024-01-01T00:00:00.000Z</LastModified></Contents>`).join('')}</ListBucketResult>`;
      res.writeHead(200, { 'content-type': 'application/xml' });
      return res.end(xml);
    }
    if (req.method === 'POST' && url.searchParams.has('delete')) {
      const keys = [...body.toString().matchAll(/<Key>(.*?)<\/Key>/g)].map((m) => m[1].replace(/&amp;/g, '&').replace(/&lt;/g, '<').replace(/&gt;/g, '>'));
      for (const k of keys) store.delete(k);
      res.writeHead(200, { 'content-type': 'application/xml' });
      return res.end(`<?xml version="1.0" encoding="UTF-8"?><DeleteResult>${keys.map((k) => `<Deleted><Key>${xmlEsc(k)}</Key></Deleted>`).join('')}</DeleteResult>`);
    }
    if (req.method === 'DELETE') { store.delete(key); res.writeHead(204); return res.end(); }
    res.writeHead(400); res.end();
  });
});

await new Promise((r) => server.listen(0, '127.0.0.1', r));
const port = server.address().port;
const ver = process.argv[2] || '21';
const { S3db } = await import(ver === '21' ? 's3db.js/lite' : 's3db-19');
process.on('unhandledRejection', (e) => console.log('!! unhandledRejection', e?.name, e?.message));
const db = new S3db({ connectionString: `http://KEY:SECRET@127.0.0.1:${port}/bucket/prefix`, logLevel: 'silent', loggerOptions: { level: 'silent' }, exitOnSignal: false });
await db.connect();
console.log(`s3db.js ${ver}: client=${db.client.constructor.name} bucket=${db.client.config.bucket} keyPrefix=${db.client.config.keyPrefix} forcePathStyle=${db.client.config.forcePathStyle}`);
const r = await db.createResource({
  name: 'wallets_transactions_balance',
  attributes: {
    id: 'string|required', originalId: 'string|required', field: 'string|required',
    value: 'number|required', operation: 'string|required', timestamp: 'string|required',
    cohortHour: 'string|required', cohortDate: 'string|required', cohortMonth: 'string|optional',
    source: 'string|optional', applied: 'boolean|optional',
  },
  partitions: {
    byHour: { fields: { cohortHour: 'string' } },
    byDay: { fields: { cohortDate: 'string' } },
    byMonth: { fields: { cohortMonth: 'string' } },
  },
  behavior: 'body-overflow', timestamps: false, asyncPartitions: false,
});
await new Promise((res) => setTimeout(res, 100));
for (const e of log) console.log(JSON.stringify(e).slice(0, 600));
log.length = 0;
const rec = {
  id: 'tx:1 ação', originalId: 'wallet-1', field: 'balance', value: -12.5, operation: 'add',
  timestamp: '2024-03-05T14:07:09.123Z', cohortHour: '2024-03-05T14', cohortDate: '2024-03-05',
  cohortMonth: '2024-03', source: 'pão ção 日本', applied: true,
};
await r.insert(rec);
await r.insert({ ...rec, id: 'big', source: 'x'.repeat(2500) });
const got = await r.get('tx:1 ação');
const lp = await r.listPartition({ partition: 'byDay', partitionValues: { cohortDate: '2024-03-05' } });
const n = await r.count();
console.log(`get -> value=${got.value} source=${JSON.stringify(got.source)} applied=${got.applied}; listPartition ids=${JSON.stringify(lp.map((x) => x.id))}; count=${n}`);
await r.insert({ ...rec, id: 'ws', source: '  padded  ' });
const ws = await r.get('ws');
console.log(`leading/trailing spaces: wrote source=${JSON.stringify('  padded  ')} -> header ${JSON.stringify(log.filter((e) => e.method === 'PUT' && e.key.endsWith('/data/id=ws'))[0]?.meta['x-amz-meta-9'])} -> read back ${JSON.stringify(ws.source)}`);
await r.insert({ ...rec, id: 'empty', source: '' });
const em = await r.get('empty');
const emPut = log.filter((e) => e.method === 'PUT' && e.key.endsWith('/data/id=empty'))[0];
console.log(`empty string: header present=${'x-amz-meta-9' in (emPut?.meta || {})} value=${JSON.stringify(emPut?.meta['x-amz-meta-9'])} -> read back ${JSON.stringify(em.source)} ('source' in result: ${'source' in em})`);
try { await r.insert(rec); } catch (e) { console.log(`duplicate insert -> ${e.name}: ${e.message.split('\n')[0]}`); }
for (const e of log) console.log(JSON.stringify(e));
await db.disconnect?.();
server.close();
process.exit(0);
