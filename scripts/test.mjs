#!/usr/bin/env node
// The whole test suite, as `npm test` runs it (plain Node, no dependencies):
//
//   build    napi build (debug): binding.js, binding.d.ts and the .node addon
//   venv     sh scripts/s3-venv.sh: the moto S3 test server's venv (idempotent)
//   cargo    cargo test --workspace --exclude s3db-eventual-consistency, with one
//            moto server for the Rust S3 tests (EC_TEST_S3_ENDPOINT/_BUCKET)
//   ava      npx ava, against s3db.js 21.6.2
//   ava19    npx ava, against s3db.js 19.5.10 (S3DB_PKG=19)
//
//   npm test                                   # everything, in that order
//   npm test -- --only ava                     # just the ava runs (both versions)
//   npm test -- --only cargo,ava21             # steps by name, comma-separated or repeated
//   npm test -- --skip build                   # everything but the build
//   npm test -- __test__/plugin.test.mjs -m 'x*'   # extra arguments go to ava
//   npm test -- --only cargo --cargo-args '-- lock_race'   # extra cargo test arguments
//
// `--only`/`--skip` names: build, venv, cargo, ava (= ava21 + ava19), ava21, ava19.
// Arguments this script does not know are passed to ava, as is everything after a
// bare `--`. Setup steps (build, venv) stop the run when they fail; a failing test
// step does not stop the next one (pass --bail for that). The exit code is 0 only
// when every selected step passed. CARGO_TARGET_DIR is honoured by both napi and cargo.

import { spawn, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const IS_WINDOWS = process.platform === 'win32'
const RUST_TEST_BUCKET = 'ec-rust-tests'

const STEPS = [
  { name: 'build', setup: true, title: 'build the addon (napi build, debug)', run: build },
  { name: 'venv', setup: true, title: 'moto S3 test server venv (scripts/s3-venv.sh)', run: venv },
  { name: 'cargo', title: 'Rust tests (cargo test, S3 tests against moto)', run: cargoTests },
  { name: 'ava21', title: 'ava, s3db.js 21.6.2', run: (o) => ava(o, null) },
  { name: 'ava19', title: 'ava, s3db.js 19.5.10 (S3DB_PKG=19)', run: (o) => ava(o, '19') },
]
const GROUPS = { ava: ['ava21', 'ava19'] }

function usage() {
  return `usage: node scripts/test.mjs [--only STEPS] [--skip STEPS] [--bail] [--cargo-args 'ARGS'] [AVA ARGS...] [-- AVA ARGS...]

steps, in order: ${STEPS.map((s) => s.name).join(', ')} (ava = ava21 + ava19)
  --only STEPS       run only these steps (comma-separated; repeatable)
  --skip STEPS       run all but these steps
  --bail             stop at the first failing step
  --cargo-args 'A B' extra arguments for cargo test, one string split on spaces
                     (e.g. --cargo-args '-- lock_race' to filter the Rust tests)
  anything else      passed to ava (file patterns, --match, --verbose, ...)`
}

function parseArgs(argv) {
  const opts = { only: null, skip: new Set(), bail: false, avaArgs: [], cargoArgs: [] }
  const names = (value, flag) => {
    if (!value) fail(`${flag} needs a step name`)
    const out = []
    for (const n of value.split(',').map((s) => s.trim()).filter(Boolean)) {
      if (GROUPS[n]) out.push(...GROUPS[n])
      else if (STEPS.some((s) => s.name === n)) out.push(n)
      else fail(`unknown step "${n}" for ${flag}; steps: ${STEPS.map((s) => s.name).join(', ')}, ava`)
    }
    return out
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined]
    if (flag === '--only' || flag === '--skip') {
      const list = names(inline ?? argv[++i], flag)
      if (flag === '--only') opts.only = new Set([...(opts.only ?? []), ...list])
      else for (const n of list) opts.skip.add(n)
    } else if (arg === '--bail') {
      opts.bail = true
    } else if (flag === '--cargo-args') {
      // One string, split on whitespace: --cargo-args '-p s3db-ec-core -- lock_race'
      const value = inline ?? argv[++i]
      if (value === undefined) fail('--cargo-args needs a value')
      opts.cargoArgs.push(...value.split(/\s+/).filter(Boolean))
    } else if (arg === '-h' || arg === '--help') {
      console.log(usage())
      process.exit(0)
    } else if (arg === '--') {
      opts.avaArgs.push(...argv.slice(i + 1))
      break
    } else {
      opts.avaArgs.push(arg)
    }
  }
  return opts
}

function fail(message) {
  console.error(`test.mjs: ${message}\n\n${usage()}`)
  process.exit(2)
}

// ---------------------------------------------------------------------------
// Child processes

let current = null // the running child, so a signal can stop it

/** Runs a command with inherited stdio; resolves with its exit code (never rejects). */
function run(cmd, args, { env = process.env, cwd = ROOT } = {}) {
  console.log(`$ ${[cmd, ...args].map(quote).join(' ')}`)
  return new Promise((resolveRun) => {
    const child = spawn(cmd, args, { cwd, env, stdio: 'inherit', shell: IS_WINDOWS })
    current = child
    child.once('error', (err) => {
      current = null
      console.error(`test.mjs: cannot run ${cmd}: ${err.message}`)
      resolveRun(127)
    })
    child.once('exit', (code, signal) => {
      current = null
      resolveRun(code ?? (signal ? 128 + (signalNumber(signal) ?? 1) : 1))
    })
  })
}

function signalNumber(signal) {
  return { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 }[signal]
}

function quote(s) {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${String(s).replace(/'/g, `'\\''`)}'`
}

function requireBin(name, pkg) {
  const bin = join(ROOT, 'node_modules', '.bin', IS_WINDOWS ? `${name}.cmd` : name)
  if (!existsSync(bin)) {
    throw new StepError(`${pkg} is not installed (${bin} missing). Run \`npm ci\` (or \`npm install\`) first.`)
  }
}

class StepError extends Error {}

// ---------------------------------------------------------------------------
// Steps. Each returns an exit code (0 = passed) or throws a StepError.

async function build() {
  requireBin('napi', '@napi-rs/cli')
  return run('npx', ['--no', '--', 'napi', 'build', '--platform', '--js', 'binding.js', '--dts', 'binding.d.ts'])
}

async function venv() {
  return run('sh', [join('scripts', 's3-venv.sh')])
}

async function cargoTests(opts) {
  const { startS3Server, createBucket } = await import(pathToFileURL(join(ROOT, '__test__', 'helpers', 's3-server.mjs')).href)
  let server
  try {
    server = await startS3Server()
    await createBucket(server.endpoint, RUST_TEST_BUCKET)
  } catch (err) {
    await server?.stop()
    throw new StepError(`could not start the moto S3 server for the Rust tests: ${err.message}`)
  }
  activeServer = server
  console.log(`moto S3 server for the Rust tests: ${server.endpoint} (pid ${server.pid}), bucket ${RUST_TEST_BUCKET}`)
  try {
    const env = { ...process.env, EC_TEST_S3_ENDPOINT: server.endpoint, EC_TEST_S3_BUCKET: RUST_TEST_BUCKET }
    return await run('cargo', ['test', '--workspace', '--exclude', 's3db-eventual-consistency', ...targetArgs(), ...opts.cargoArgs], { env })
  } finally {
    activeServer = null
    await server.stop()
  }
}

/**
 * `napi build` always passes `--target <host triple>`, so its artifacts live in
 * target/<triple>/debug. Without the same flag cargo test would build into
 * target/debug and recompile every dependency (~2.5 min cold on 2 cores).
 */
function targetArgs() {
  if (process.env.CARGO_BUILD_TARGET) return [] // napi and cargo both honour it
  const out = spawnSync('rustc', ['-vV'], { encoding: 'utf8' })
  const host = /^host: (\S+)$/m.exec(out.stdout ?? '')?.[1]
  return host ? ['--target', host] : []
}

async function ava(opts, s3dbPkg) {
  requireBin('ava', 'ava')
  if (!existsSync(join(ROOT, 'binding.js'))) {
    throw new StepError('binding.js is missing: the addon has not been built. Run the build step (npm test, or npm run build:debug).')
  }
  const env = { ...process.env }
  if (s3dbPkg) env.S3DB_PKG = s3dbPkg
  else delete env.S3DB_PKG
  return run('npx', ['--no', '--', 'ava', ...opts.avaArgs], { env })
}

// ---------------------------------------------------------------------------

let activeServer = null

function formatDuration(ms) {
  if (ms < 1000) return `${ms} ms`
  const s = ms / 1000
  if (s < 60) return `${s.toFixed(1)} s`
  const m = Math.floor(s / 60)
  return `${m} min ${(s - m * 60).toFixed(1).padStart(4, '0')} s`
}

function banner(text) {
  const line = '='.repeat(Math.max(8, 78 - text.length - 4))
  console.log(`\n== ${text} ${line}`)
}

function summary(results, totalMs) {
  banner('test.mjs summary')
  const width = Math.max(...STEPS.map((s) => s.name.length))
  for (const r of results) {
    const status = { passed: 'ok', failed: 'FAILED', skipped: 'skipped', 'not run': 'not run' }[r.status]
    const time = r.ms === undefined ? '' : formatDuration(r.ms)
    const detail = r.detail ? `  (${r.detail})` : ''
    console.log(`  ${status.padEnd(8)} ${r.name.padEnd(width)}  ${time.padStart(14)}  ${r.title}${detail}`)
  }
  console.log(`  ${''.padEnd(8)} ${'total'.padEnd(width)}  ${formatDuration(totalMs).padStart(14)}`)
  const failed = results.filter((r) => r.status === 'failed')
  if (failed.length) console.log(`\ntest.mjs: FAILED: ${failed.map((r) => r.name).join(', ')}`)
  else {
    const n = results.filter((r) => r.status === 'passed').length
    console.log(`\ntest.mjs: ${n === 1 ? 'the selected step' : `all ${n} selected steps`} passed`)
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2))
  const selected = (step) => (opts.only ? opts.only.has(step.name) : true) && !opts.skip.has(step.name)
  const results = []
  const t0 = Date.now()

  let interrupted = null
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, async () => {
      if (interrupted) return
      interrupted = sig
      console.error(`\ntest.mjs: ${sig}, stopping`)
      current?.kill(sig)
      await activeServer?.stop().catch(() => {})
      setTimeout(() => process.exit(128 + signalNumber(sig)), 5000).unref()
    })
  }

  let stop = null
  for (const step of STEPS) {
    if (!selected(step)) {
      results.push({ name: step.name, title: step.title, status: 'skipped' })
      continue
    }
    if (stop || interrupted) {
      results.push({ name: step.name, title: step.title, status: 'not run', detail: interrupted ? `${interrupted}` : `after ${stop} failed` })
      continue
    }
    banner(`${step.name}: ${step.title}`)
    const start = Date.now()
    let code
    let detail = ''
    try {
      code = await step.run(opts)
      if (code !== 0) detail = `exit code ${code}`
    } catch (err) {
      code = 1
      detail = err instanceof StepError ? err.message : `error: ${err.stack ?? err}`
      console.error(`test.mjs: ${detail}`)
    }
    const ms = Date.now() - start
    const status = code === 0 && !interrupted ? 'passed' : 'failed'
    if (interrupted && !detail) detail = interrupted
    results.push({ name: step.name, title: step.title, status, ms, detail })
    console.log(`\n-- ${step.name}: ${status === 'passed' ? 'ok' : 'FAILED'} in ${formatDuration(ms)}${detail ? ` (${detail})` : ''}`)
    if (status === 'failed' && (step.setup || opts.bail)) stop = step.name
  }

  summary(results, Date.now() - t0)
  if (interrupted) process.exit(128 + signalNumber(interrupted))
  process.exit(results.some((r) => r.status === 'failed') ? 1 : 0)
}

await main()
