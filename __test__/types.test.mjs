// index.d.ts against the manual's examples: `tsc --noEmit` must pass, and every
// `@ts-expect-error` misuse in __test__/types/manual.ts must really be an error
// (tsc reports an unused directive otherwise).
import test from 'ava'
import { spawnSync } from 'node:child_process'
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { tmpdir } from 'node:os'

const require = createRequire(import.meta.url)
const tsc = require.resolve('typescript/bin/tsc')
const root = join(import.meta.dirname, '..')

function compile(project) {
  return spawnSync(process.execPath, [tsc, '-p', project], { cwd: root, encoding: 'utf8' })
}

test('the manual examples type-check and misuse is rejected', (t) => {
  const r = compile(join(root, '__test__', 'types', 'tsconfig.json'))
  t.is(r.status, 0, r.stdout + r.stderr)
})

test('a string amount does not compile', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ec-types-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'misuse.ts')
  writeFileSync(
    file,
    `import type { EventualConsistencyResource } from ${JSON.stringify(join(root, 'index.js'))}\n` +
      `declare const wallets: EventualConsistencyResource\nvoid wallets.add('w1', 'ten')\n`,
  )
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { strict: true, noEmit: true, module: 'NodeNext', moduleResolution: 'NodeNext', skipLibCheck: true, types: [] }, files: [file] }))
  const r = compile(join(dir, 'tsconfig.json'))
  t.not(r.status, 0)
  t.regex(r.stdout, /TS2345: Argument of type 'string' is not assignable to parameter of type 'number'/)
})
