// ava config for the long multi-process runs: npm run test:chaos
// (ava --config __test__/chaos/ava.config.mjs). Kept apart from the main suite,
// whose `files` glob (__test__/**/*.test.mjs) does not match *.chaos.mjs.
export default {
  files: ['__test__/chaos/**/*.chaos.mjs'],
  // ava's timeout is inactivity between results; the full crash test alone takes minutes.
  timeout: '40m',
  workerThreads: false,
  concurrency: 1,
  verbose: true,
}
