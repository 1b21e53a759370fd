// codec-dump.mjs — dump exactly what s3db.js stores for the
// wallets_transactions_balance resource, for s3db.js 21.6.2 and 19.5.10.
// Run from /work/main:   node docs/research/codec-dump.mjs [21|19] [body-overflow|user-managed]
// (no args = run all four combinations).  Pure MemoryClient; no network.
import { readFileSync } from 'node:fs';
const pkgVersion = (dir) => JSON.parse(readFileSync(new URL(`../../node_modules/${dir}/package.json`, import.meta.url), 'utf8')).version;

const LIBS = {
  '21': () => import('s3db.js/lite'),
  '19': () => import('s3db-19'),
};

const ATTRS = {
  id: 'string|required', originalId: 'string|required', field: 'string|required',
  value: 'number|required', operation: 'string|required', timestamp: 'string|required',
  cohortHour: 'string|required', cohortDate: 'string|required', cohortMonth: 'string|optional',
  source: 'string|optional', applied: 'boolean|optional',
};
const PARTITIONS = {
  byHour: { fields: { cohortHour: 'string' } },
  byDay: { fields: { cohortDate: 'string' } },
  byMonth: { fields: { cohortMonth: 'string' } },
};

const j = (v) => JSON.stringify(v);
const log = (...a) => console.log(...a);

function base(id, extra = {}) {
  return {
    id, originalId: 'wallet-1', field: 'balance', value: 10, operation: 'add',
    timestamp: '2024-03-05T14:07:09.123Z', cohortHour: '2024-03-05T14',
    cohortDate: '2024-03-05', cohortMonth: '2024-03', source: 'api', applied: true,
    ...extra,
  };
}

function rawObjects(client) {
  // MemoryClient -> MemoryStorage.objects : Map<fullKey, {body:Buffer, metadata, contentType, ...}>
  const out = [];
  for (const [k, o] of client.storage.objects.entries()) {
    out.push({ key: k, metadata: o.metadata, contentType: o.contentType, body: o.body.toString('utf8') });
  }
  return out.sort((a, b) => a.key.localeCompare(b.key));
}
function dumpRaw(client, filter = () => true) {
  for (const o of rawObjects(client).filter(filter)) {
    log(`  KEY ${j(o.key)}`);
    log(`      meta=${j(o.metadata)} ct=${j(o.contentType)} body=${o.body.length > 300 ? j(o.body.slice(0, 300)) + '...(' + o.body.length + ' chars)' : j(o.body)}`);
  }
}

function instrument(client, calls) {
  const names = ['putObject', 'getObject', 'headObject', 'deleteObject', 'deleteObjects', 'listObjects',
    'getKeysPage', 'getAllKeys', 'count', 'copyObject', 'exists'];
  for (const n of names) {
    if (typeof client[n] !== 'function') continue;
    const orig = client[n].bind(client);
    client[n] = async (...args) => {
      const a = args[0];
      let desc;
      if (n === 'putObject') desc = { key: a.key, metadata: a.metadata, contentType: a.contentType, body: typeof a.body === 'string' ? a.body : (a.body ? `<${a.body.length} bytes>` : a.body), ifNoneMatch: a.ifNoneMatch, ifMatch: a.ifMatch };
      else desc = a;
      calls.push(`${n} ${j(desc)}`);
      return orig(...args);
    };
  }
}

async function section(title, fn) {
  log(`\n--- ${title}`);
  try { await fn(); } catch (e) { log(`  !! ${e.name}: ${e.message.split('\n')[0]}`); }
}

async function run(ver, behavior) {
  const lib = await LIBS[ver]();
  const { S3db } = lib;
  const bucket = `b${ver}${behavior.replace(/[^a-z]/g, '')}`;
  const db = new S3db({ connectionString: `memory://${bucket}/prefix`, logLevel: 'silent', loggerOptions: { level: 'silent' }, exitOnSignal: false });
  await db.connect();
  const client = db.client;
  log(`\n\n================ s3db.js ${ver} (${pkgVersion(ver === '21' ? 's3db.js' : 's3db-19')}) behavior=${behavior} client=${client.constructor.name} keyPrefix=${j(client.keyPrefix)}`);
  const calls = [];
  instrument(client, calls);
  const flush = (label) => { log(`  [client calls: ${label}]`); for (const c of calls) log('    ' + c); calls.length = 0; };

  const cfg = { name: 'wallets_transactions_balance', attributes: ATTRS, partitions: PARTITIONS, timestamps: false, asyncPartitions: false };
  if (behavior !== 'default') cfg.behavior = behavior;
  const r = await db.createResource(cfg);
  await new Promise((res) => setTimeout(res, 50));
  await section('resource after createResource', async () => {
    log(`  resource.version=${j(r.version)} schema.version=${j(r.schema.version)} behavior=${j(r.behavior)} asyncPartitions=${j(r.config.asyncPartitions)} strictPartitions=${j(r.config.strictPartitions)} metadataLimit=${j(r.metadataLimit)} idSize=${j(r.idSize)}`);
    log(`  schema.map=${j(r.schema.map)}`);
    log(`  schema.reversedMap=${j(r.schema.reversedMap)}`);
    log(`  schema.pluginMap=${j(r.schema.pluginMap)}`);
    log(`  schema.options.hooks.beforeMap=${j(r.schema.options.hooks.beforeMap)}`);
    log(`  schema.options.hooks.afterUnmap=${j(r.schema.options.hooks.afterUnmap)}`);
    flush('createResource');
  });
  await section('raw s3db.json', async () => {
    if (db.uploadMetadataFile) await db.uploadMetadataFile();
    const o = client.storage.objects.get('prefix/s3db.json');
    log(`  meta=${j(o?.metadata)} ct=${j(o?.contentType)}`);
    log(o ? o.body.toString('utf8') : '  (missing)');
    calls.length = 0;
  });

  // ---- value encoding matrix -------------------------------------------------
  const cases = [
    ['int0', { value: 0 }], ['int1', { value: 1 }], ['int61', { value: 61 }], ['int62', { value: 62 }],
    ['intneg5', { value: -5 }], ['int2p53', { value: 2 ** 53 }], ['int1e15', { value: 1e15 + 7 }],
    ['dec0_1', { value: 0.1 }], ['decneg12_5', { value: -12.5 }], ['dec1em7', { value: 1e-7 }],
    ['dec1_5em7', { value: 1.5e-7 }], ['dec1e21', { value: 1e21 }], ['dec123_456', { value: 123.456 }], ['decneg0_5', { value: -0.5 }],
    ['boolfalse', { applied: false }],
    ['strspace', { source: 'hello world' }], ['strunicode', { source: 'pão ção 日本' }], ['strcjk', { source: '日本語テキスト' }],
    ['strlatin', { source: 'ação' }], ['strpct', { source: '100% a:b=c/d' }], ['strempty', { source: '' }],
    ['strprefix_u', { source: 'u:abc' }], ['strprefix_b', { source: 'b:abc' }], ['strprefix_d', { source: 'd:abc' }],
    ['strdict', { source: 'completed' }], ['strjsonct', { source: 'application/json' }], ['strurl', { source: 'https://example.com/x' }],
    ['strnull', { source: 'null' }], ['strundef', { source: 'undefined' }], ['strjson', { source: '{"a":1}' }], ['strarr', { source: '[1,2]' }],
    ['strnewline', { source: 'a\nb' }], ['strnumeric', { source: '00123' }],
    ['optmissing', { cohortMonth: undefined, source: undefined, applied: undefined }],
    ['optnull', { source: null }],
  ];
  for (const [id, extra] of cases) {
    await section(`insert ${id} ${j(extra, (k, v) => v === undefined ? '<undefined>' : v)}`, async () => {
      const rec = base(id, extra);
      for (const k of Object.keys(rec)) if (rec[k] === undefined) delete rec[k];
      const ins = await r.insert(rec);
      const key = `prefix/resource=wallets_transactions_balance/data/id=${id}`;
      const o = client.storage.objects.get(key);
      log(`  stored meta=${j(o?.metadata)} ct=${j(o?.contentType)} body=${j(o?.body.toString('utf8'))}`);
      const got = await r.get(id);
      const clean = Object.fromEntries(Object.entries(got).filter(([k]) => !k.startsWith('_')));
      log(`  get -> ${j(clean, (k, v) => v === undefined ? '<undefined>' : v)}  typeof value=${typeof got.value}`);
      log(`  insert() returned value=${j(ins.value)} source=${j(ins.source)}`);
      if (id === 'int0') flush('insert int0 (full call trace)');
      calls.length = 0;
    });
  }

  await section('all raw objects for id=int1 (data + partition refs)', async () => {
    dumpRaw(client, (o) => o.key.endsWith('id=int1'));
  });

  // ---- overflow -----------------------------------------------------------------
  await section('insert overflow (source = 3000 x "x")', async () => {
    await r.insert(base('big', { source: 'x'.repeat(3000) }));
    dumpRaw(client, (o) => o.key.endsWith('/data/id=big'));
    const got = await r.get('big');
    log(`  get -> source.length=${got.source?.length} value=${got.value} applied=${got.applied} keys=${j(Object.keys(got))}`);
    flush('insert big');
  });
  await section('insert overflow (source = 700 x "日")', async () => {
    await r.insert(base('bigcjk', { source: '日'.repeat(700) }));
    dumpRaw(client, (o) => o.key.endsWith('/data/id=bigcjk'));
    const got = await r.get('bigcjk');
    log(`  get -> source.length=${got.source?.length} value=${got.value}`);
    calls.length = 0;
  });

  // ---- update ------------------------------------------------------------------
  await section('update int1: value->2.5, cohortDate->2024-03-06, cohortHour->2024-03-06T01', async () => {
    calls.length = 0;
    await r.update('int1', { value: 2.5, cohortDate: '2024-03-06', cohortHour: '2024-03-06T01' });
    flush('update');
    dumpRaw(client, (o) => o.key.endsWith('id=int1'));
  });
  await section('update big -> small source (overflow -> fits)', async () => {
    await r.update('big', { source: 'small' });
    calls.length = 0;
    dumpRaw(client, (o) => o.key.endsWith('/data/id=big'));
    const got = await r.get('big');
    log(`  get -> source=${j(got.source)}`);
  });

  // ---- ids / partition values with special chars --------------------------------
  for (const id of ['a b', 'a:b', 'pão', '日本', 'a/b', 'a=b', 'a%b', 'a+b', 'a.b', '..', 'a\\b']) {
    await section(`insert id=${j(id)}`, async () => {
      await r.insert(base(id));
      dumpRaw(client, (o) => o.key.includes('/data/') && o.key.endsWith(`id=${id}`));
      const got = await r.get(id);
      log(`  get ok id=${j(got.id)}`);
      calls.length = 0;
    });
  }
  for (const hv of ['2024 03 05', '2024:03', 'pão-日本', '2024/03/05', 'a=b', '50%']) {
    await section(`insert partition value cohortHour=${j(hv)} cohortDate=${j(hv)}`, async () => {
      const id = 'pv' + Buffer.from(hv).toString('hex');
      await r.insert(base(id, { cohortHour: hv, cohortDate: hv }));
      dumpRaw(client, (o) => o.key.endsWith(`id=${id}`));
      const viaList = await r.listPartition({ partition: 'byDay', partitionValues: { cohortDate: hv } });
      log(`  listPartition(byDay=${j(hv)}) -> ids ${j(viaList.map((x) => x.id))}`);
      calls.length = 0;
    });
  }

  // ---- read paths --------------------------------------------------------------
  await section('count()', async () => { calls.length = 0; log(`  -> ${await r.count()}`); flush('count'); });
  await section('count({partition:byDay, partitionValues:{cohortDate:2024-03-05}})', async () => {
    calls.length = 0; log(`  -> ${await r.count({ partition: 'byDay', partitionValues: { cohortDate: '2024-03-05' } })}`); flush('count partition');
  });
  await section('listPartition({partition:byMonth, partitionValues:{cohortMonth:2024-03}, limit:2})', async () => {
    calls.length = 0;
    const res = await r.listPartition({ partition: 'byMonth', partitionValues: { cohortMonth: '2024-03' }, limit: 2 });
    log(`  -> ${j(res.map((x) => ({ id: x.id, _partition: x._partition, _partitionValues: x._partitionValues })))}`);
    flush('listPartition');
  });
  await section('list({partition:byDay, partitionValues:{cohortDate:2024-03-06}})', async () => {
    calls.length = 0;
    const res = await r.list({ partition: 'byDay', partitionValues: { cohortDate: '2024-03-06' } });
    log(`  -> ids ${j(res.map((x) => x.id))}`);
    flush('list partition');
  });
  await section('query({cohortDate:2024-03-06})  (no partition option)', async () => {
    calls.length = 0;
    const res = await r.query({ cohortDate: '2024-03-06' });
    log(`  -> ids ${j(res.map((x) => x.id))}`);
    log(`  [client calls: ${calls.length} total; first 4 + kinds]`);
    for (const c of calls.slice(0, 4)) log('    ' + c);
    log('    kinds: ' + j(calls.reduce((m, c) => { const k = c.split(' ')[0]; m[k] = (m[k] || 0) + 1; return m; }, {})));
    calls.length = 0;
  });
  await section('query({cohortDate:2024-03-06}, {partition:byDay, partitionValues:{cohortDate:2024-03-06}})', async () => {
    calls.length = 0;
    const res = await r.query({ cohortDate: '2024-03-06' }, { partition: 'byDay', partitionValues: { cohortDate: '2024-03-06' } });
    log(`  -> ids ${j(res.map((x) => x.id))}`);
    flush('query with partition');
  });
  await section('query({cohortDate:2024-03-06, field:balance}) (no partition option)', async () => {
    calls.length = 0;
    const res = await r.query({ cohortDate: '2024-03-06', field: 'balance' });
    log(`  -> ids ${j(res.map((x) => x.id))}`);
    log('    kinds: ' + j(calls.reduce((m, c) => { const k = c.split(' ')[0]; m[k] = (m[k] || 0) + 1; return m; }, {})));
    calls.length = 0;
  });
  await section('getFromPartition({id:int0, partitionName:byDay, partitionValues:{cohortDate:2024-03-05}})', async () => {
    calls.length = 0;
    const res = await r.getFromPartition({ id: 'int0', partitionName: 'byDay', partitionValues: { cohortDate: '2024-03-05' } });
    log(`  -> id=${res.id} _partition=${res._partition} _partitionValues=${j(res._partitionValues)}`);
    flush('getFromPartition');
  });

  // ---- foreign writers (what a Rust writer would do) --------------------------
  const dataKey = (id) => `resource=wallets_transactions_balance/data/id=${id}`;
  const m = r.schema.map;
  await section('foreign object: minimal metadata (only required, _v=v1), empty body, no contentType', async () => {
    await client.putObject({ key: dataKey('rust1'), body: '', metadata: {
      _v: 'v1', [m.originalId]: 'w', [m.field]: 'balance', [m.value]: '1.5', [m.operation]: 'add',
      [m.timestamp]: '2024-03-05T14:07:09.123Z', [m.cohortHour]: '2024-03-05T14', [m.cohortDate]: '2024-03-05' } });
    const got = await r.get('rust1');
    log(`  get -> ${j(Object.fromEntries(Object.entries(got).filter(([k]) => !k.startsWith('_'))))}`);
    const q1 = await r.query({ cohortDate: '2024-03-05' });
    log(`  query({cohortDate}) includes rust1 (no partition refs written)? ${q1.some((x) => x.id === 'rust1')}`);
    const l1 = await r.list();
    log(`  list() includes rust1? ${l1.some((x) => x.id === 'rust1')}`);
    calls.length = 0;
  });
  await section('foreign object: no _v at all; value as plain decimal "12.25"; applied "1"; raw unicode source w/o u: prefix', async () => {
    await client.storage.put(`prefix/${dataKey('rust2')}`, { body: Buffer.alloc(0), metadata: {
      [m.originalId]: 'w', [m.field]: 'balance', [m.value]: '12.25', [m.operation]: 'add',
      [m.timestamp]: 't', [m.cohortHour]: 'h', [m.cohortDate]: 'd', [m.applied]: '1', [m.source]: 'pão' } });
    const got = await r.get('rust2');
    log(`  get -> ${j(Object.fromEntries(Object.entries(got).filter(([k]) => !k.startsWith('_') || k === '_v')))}`);
    calls.length = 0;
  });
  await section('foreign object: value "10" (decimal digits, not base62)  -> how is it read?', async () => {
    await client.storage.put(`prefix/${dataKey('rust3')}`, { body: Buffer.alloc(0), metadata: {
      _v: 'v1', [m.originalId]: 'w', [m.field]: 'balance', [m.value]: '10', [m.operation]: 'add',
      [m.timestamp]: 't', [m.cohortHour]: 'h', [m.cohortDate]: 'd' } });
    const got = await r.get('rust3');
    log(`  get -> value=${j(got.value)}`);
    calls.length = 0;
  });
  await section('foreign object: body-overflow style: some fields in JSON body (mapped keys), _overflow marker', async () => {
    await client.storage.put(`prefix/${dataKey('rust4')}`, { body: Buffer.from(j({ [m.source]: 'from-body', [m.value]: 'a.5' })), contentType: 'application/json', metadata: {
      _v: 'v1', _overflow: 'true', [m.originalId]: 'w', [m.field]: 'balance', [m.operation]: 'add',
      [m.timestamp]: 't', [m.cohortHour]: 'h', [m.cohortDate]: 'd' } });
    const got = await r.get('rust4');
    log(`  get -> ${j(Object.fromEntries(Object.entries(got).filter(([k]) => !k.startsWith('_'))))}`);
    calls.length = 0;
  });
  await section('foreign object: body has fields but NO _overflow marker', async () => {
    await client.storage.put(`prefix/${dataKey('rust5')}`, { body: Buffer.from(j({ [m.source]: 'from-body' })), contentType: 'application/json', metadata: {
      _v: 'v1', [m.originalId]: 'w', [m.field]: 'balance', [m.value]: 'a', [m.operation]: 'add',
      [m.timestamp]: 't', [m.cohortHour]: 'h', [m.cohortDate]: 'd' } });
    const got = await r.get('rust5');
    log(`  get -> source=${j(got.source)} value=${j(got.value)}`);
    calls.length = 0;
  });
  await section('foreign partition ref for rust1 (empty body, only _v) -> listPartition/query', async () => {
    await client.putObject({ key: 'resource=wallets_transactions_balance/partition=byDay/cohortDate=2024-03-05/id=rust1', body: '', metadata: { _v: 'v1' } });
    const lp = await r.listPartition({ partition: 'byDay', partitionValues: { cohortDate: '2024-03-05' } });
    log(`  listPartition includes rust1? ${lp.some((x) => x.id === 'rust1')}`);
    const q = await r.query({ cohortDate: '2024-03-05' });
    log(`  query({cohortDate}) includes rust1? ${q.some((x) => x.id === 'rust1')}`);
    await client.storage.put('prefix/resource=wallets_transactions_balance/partition=byDay/cohortDate=2024-03-05/id=ghost', { body: Buffer.alloc(0), metadata: {} });
    const [ok, err] = await r.listPartition({ partition: 'byDay', partitionValues: { cohortDate: '2024-03-05' } }).then((x) => [true, x], (e) => [false, e]);
    log(`  listPartition with dangling ref id=ghost (no data object): ${ok ? 'ok ids=' + j(err.map((x) => x.id)) : 'THROWS ' + err.name + ': ' + err.message}`);
    await client.storage.delete('prefix/resource=wallets_transactions_balance/partition=byDay/cohortDate=2024-03-05/id=ghost');
    await client.putObject({ key: 'resource=wallets_transactions_balance/partition=byDay/cohortDate=2024-03-05/id=int1', body: '', metadata: {} });
    const q2 = await r.query({ cohortDate: '2024-03-05' });
    const hit = q2.find((x) => x.id === 'int1');
    log(`  stale ref byDay=2024-03-05 for int1 (whose data says cohortDate=2024-03-06): query({cohortDate:'2024-03-05'}) returns int1? ${!!hit}${hit ? ' with cohortDate=' + hit.cohortDate : ''}`);
    calls.length = 0;
  });
  await section('insert existing id (IfNoneMatch)', async () => {
    await r.insert(base('int0'));
  });
  await section('upsert-like replace via insert of same id after delete', async () => {
    calls.length = 0;
    await r.delete('int61');
    flush('delete');
  });
  await db.disconnect?.();
}

process.on('unhandledRejection', (e) => console.log('  !! unhandledRejection', e?.name, e?.message));
process.on('uncaughtException', (e) => console.log('  !! uncaughtException', e?.name, e?.message));
async function runExtras(ver) {
  const { S3db } = await LIBS[ver]();
  log(`\n\n================ s3db.js ${ver} EXTRAS`);
  const mk = async (bucket) => { const db = new S3db({ connectionString: `memory://${bucket}/prefix`, logLevel: 'silent', loggerOptions: { level: 'silent' }, exitOnSignal: false }); await db.connect(); return db; };
  const bucket = `x${ver}`;

  await section('defaults: createResource WITHOUT behavior/timestamps/asyncPartitions', async () => {
    const db = await mk(bucket + 'def');
    const r = await db.createResource({ name: 'wallets_transactions_balance', attributes: ATTRS, partitions: PARTITIONS });
    log(`  behavior=${r.behavior} timestamps=${r.config.timestamps} asyncPartitions=${r.config.asyncPartitions} strictPartitions=${r.config.strictPartitions}`);
    await r.insert(base('a1'));
    const refsNow = rawObjects(db.client).filter((o) => o.key.includes('/partition=') && o.key.endsWith('id=a1')).length;
    await new Promise((res) => setTimeout(res, 50));
    const refsLater = rawObjects(db.client).filter((o) => o.key.includes('/partition=') && o.key.endsWith('id=a1')).length;
    log(`  partition refs for a1: right after insert() resolved=${refsNow}, 50ms later=${refsLater}`);
    await r.update('a1', { cohortDate: '2099-01-01' });
    const refKeys = () => rawObjects(db.client).filter((o) => o.key.includes('/partition=byDay/') && o.key.endsWith('id=a1')).map((o) => o.key.split('/')[3]);
    const now2 = refKeys();
    await new Promise((res) => setTimeout(res, 50));
    log(`  after update(cohortDate=2099-01-01): byDay refs right after update() resolved=${j(now2)}, 50ms later=${j(refKeys())}`);
  });

  await section('null / odd values', async () => {
    const db = await mk(bucket + 'odd');
    const r = await db.createResource({ name: 'wallets_transactions_balance', attributes: ATTRS, partitions: PARTITIONS, behavior: 'body-overflow', asyncPartitions: false });
    const tries = [
      ['appliednull', { applied: null }], ['monthnull', { cohortMonth: null }], ['woff2', { source: 'font/woff2' }],
      ['localhost', { source: 'http://localhost:8080/x' }], ['valstr', { value: '12.5' }], ['valnan', { value: NaN }],
      ['valbig', { value: 1.5e21 }], ['valtiny', { value: 1.23e-9 }], ['boolstr', { applied: 'yes' }],
      ['emoji', { source: 'ok 👍 fine text here' }], ['ctrl', { source: 'tab\there and more ascii text' }],
    ];
    for (const [id, extra] of tries) {
      const [ok, e] = await r.insert(base(id, extra)).then(() => [true], (err) => [false, err]);
      if (!ok) { log(`  ${id} ${j(extra)} -> insert THROWS ${e.name}: ${e.message.split('\n')[0].slice(0, 160)}`); continue; }
      const o = db.client.storage.objects.get(`prefix/resource=wallets_transactions_balance/data/id=${id}`);
      const got = await r.get(id);
      const refs = rawObjects(db.client).filter((x) => x.key.includes('/partition=') && x.key.endsWith(`id=${id}`)).map((x) => x.key.split('/')[2]);
      log(`  ${id} ${j(extra, (k, v) => (typeof v === 'number' && !isFinite(v)) ? String(v) : v)} -> meta ${j({ v3: o.metadata['3'], v8: o.metadata['8'], v9: o.metadata['9'], va: o.metadata.a })} -> get value=${j(got.value)} cohortMonth=${j(got.cohortMonth)} source=${j(got.source)} applied=${j(got.applied)} refs=${j(refs)}`);
    }
  });


  await section('body-overflow threshold (id="big", all other fields as in base()): source length N', async () => {
    const db = await mk(bucket + 'thr');
    const r = await db.createResource({ name: 'wallets_transactions_balance', attributes: ATTRS, partitions: PARTITIONS, behavior: 'body-overflow', asyncPartitions: false });
    const where = async (n, ch) => {
      await r.delete('big').catch(() => {});
      await r.insert(base('big', { source: ch.repeat(n) }));
      const o = db.client.storage.objects.get('prefix/resource=wallets_transactions_balance/data/id=big');
      const metaBytes = Object.entries(o.metadata).reduce((t, [k, v]) => t + Buffer.byteLength(k) + Buffer.byteLength(v), 0);
      return { inMeta: '9' in o.metadata, metaBytes, overflow: o.metadata._overflow };
    };
    for (const ch of ['x', 'ã', '日']) {
      let lo = 1, hi = 3000;
      while (lo < hi) { const mid = Math.ceil((lo + hi) / 2); if ((await where(mid, ch)).inMeta) lo = mid; else hi = mid - 1; }
      const a = await where(lo, ch), b = await where(lo + 1, ch);
      log(`  char ${j(ch)} (${Buffer.byteLength(ch)} UTF-8 bytes): max N kept in metadata = ${lo} (stored metadata bytes incl. keys = ${a.metaBytes}); N=${lo + 1} -> source in body, _overflow=${b.overflow}, metadata bytes=${b.metaBytes}`);
    }
  });

  await section('map derivation: attribute order / no id attribute / reconnect with reordered attributes', async () => {
    const db = await mk(bucket + 'map');
    const r1 = await db.createResource({ name: 'noid', attributes: { b: 'string', a: 'number', c: 'boolean|optional' } });
    log(`  noid (no 'id' attr) map=${j(r1.schema.map)}`);
    const many = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`f${i}`, 'string|optional']));
    const r2 = await db.createResource({ name: 'many', attributes: many });
    log(`  40 attrs map tail=${j(Object.entries(r2.schema.map).slice(34))}`);
    const r3 = await db.createResource({ name: 'wallets_transactions_balance', attributes: ATTRS, partitions: PARTITIONS, behavior: 'body-overflow', asyncPartitions: false });
    await r3.insert(base('m1'));
    await new Promise((res) => setTimeout(res, 100));
    if (db.uploadMetadataFile) await db.uploadMetadataFile();
    const db2 = await mk(bucket + 'map');
    const pre = db2.resources?.wallets_transactions_balance || db2._resourcesMap?.wallets_transactions_balance;
    log(`  db2 after connect (from s3db.json): resource present=${!!pre} map=${j(pre?.schema?.map)}`);
    const reordered = Object.fromEntries(Object.entries(ATTRS).reverse());
    reordered.extraField = 'string|optional';
    const r4 = await db2.createResource({ name: 'wallets_transactions_balance', attributes: reordered, partitions: PARTITIONS, behavior: 'body-overflow', asyncPartitions: false });
    log(`  db2 createResource(reversed attrs + extraField) map=${j(r4.schema.map)} version=${r4.version}`);
    const got = await r4.get('m1');
    log(`  db2 get(m1) value=${got.value} cohortDate=${got.cohortDate}`);
    const db3 = await mk(bucket + 'fresh');
    const r5 = await db3.createResource({ name: 'wallets_transactions_balance', attributes: reordered, partitions: PARTITIONS });
    log(`  fresh bucket, reversed attrs map=${j(r5.schema.map)}`);
  });
}

async function runCross(fromVer, toVer) {
  log(`\n\n================ CROSS: objects written by ${fromVer} read by ${toVer}`);
  const A = (await LIBS[fromVer]()).S3db, B = (await LIBS[toVer]()).S3db;
  const bucket = `cross${fromVer}to${toVer}`;
  const dba = new A({ connectionString: `memory://${bucket}/prefix`, logLevel: 'silent', loggerOptions: { level: 'silent' }, exitOnSignal: false });
  await dba.connect();
  const ra = await dba.createResource({ name: 'wallets_transactions_balance', attributes: ATTRS, partitions: PARTITIONS, behavior: 'body-overflow', asyncPartitions: false });
  const recs = [base('c1', { value: -12.5, source: 'pão ção 日本' }), base('c2', { value: 2 ** 53, applied: false, source: undefined, cohortMonth: undefined }), base('c3', { source: 'x'.repeat(2500) })];
  for (const rec of recs) { for (const k of Object.keys(rec)) if (rec[k] === undefined) delete rec[k]; await ra.insert(rec); }
  await ra.update('c1', { value: 7, cohortDate: '2024-03-07' });
  await new Promise((res) => setTimeout(res, 100));
  if (dba.uploadMetadataFile) await dba.uploadMetadataFile();
  const snap = dba.client.storage.snapshot();
  const dbb = new B({ connectionString: `memory://${bucket}/prefix`, logLevel: 'silent', loggerOptions: { level: 'silent' }, exitOnSignal: false });
  await dbb.connect();
  dbb.client.storage.restore(snap);
  await dbb.disconnect?.();
  const dbc = new B({ connectionString: `memory://${bucket}/prefix`, logLevel: 'silent', loggerOptions: { level: 'silent' }, exitOnSignal: false });
  await dbc.connect();
  const rb = dbc.resources.wallets_transactions_balance || await dbc.createResource({ name: 'wallets_transactions_balance', attributes: ATTRS, partitions: PARTITIONS, behavior: 'body-overflow', asyncPartitions: false });
  for (const id of ['c1', 'c2', 'c3']) {
    const got = await rb.get(id);
    const clean = Object.fromEntries(Object.entries(got).filter(([k]) => !k.startsWith('_')));
    if (clean.source && clean.source.length > 40) clean.source = clean.source.slice(0, 10) + `...(${clean.source.length})`;
    log(`  ${toVer}.get(${id}) -> ${j(clean)}`);
  }
  const lp = await rb.listPartition({ partition: 'byDay', partitionValues: { cohortDate: '2024-03-07' } });
  log(`  ${toVer}.listPartition(byDay=2024-03-07) -> ${j(lp.map((x) => x.id))}`);
}

const [verArg, behArg] = process.argv.slice(2);
for (const ver of verArg ? [verArg] : ['21', '19']) {
  for (const beh of behArg ? [behArg] : ['body-overflow', 'default']) {
    await run(ver, beh);
  }
  if (!behArg) await runExtras(ver);
}
if (!verArg) { await runCross('21', '19'); await runCross('19', '21'); }
process.exit(0);
