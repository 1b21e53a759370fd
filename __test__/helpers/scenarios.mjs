// The multi-process scenarios, parametrized by size: __test__/distributed.test.mjs
// runs them small (npm test), __test__/chaos/*.chaos.mjs at full size (npm run test:chaos).
//
// Every scenario runs real Node processes (fixtures/worker.mjs), each with its own
// s3db.js Database and plugin, against the real (single-threaded) moto S3 server.
// Assertions are about values and counts only; times are printed, and bounded
// only where a bound is the point (lease recovery).


export * from './scenarios/shared.mjs'
export * from './scenarios/locks.mjs'
export * from './scenarios/crash.mjs'
export * from './scenarios/idempotency.mjs'
export * from './scenarios/leases.mjs'
