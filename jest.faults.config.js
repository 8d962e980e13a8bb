/**
 * The fault suite (`npm run test:faults`): the built apps as processes under a steady load, killed,
 * terminated, cut off from Postgres and Kafka, fed duplicates and poison; then every accepted
 * command must be in the views exactly once and the views must equal a rebuild. Figures land in
 * tmp/reliability/*.json (docs/reliability.md reports them). One suite at a time: each runs a
 * whole system and kills processes, and the timings matter.
 */
module.exports = require('./jest.preset')({
  displayName: 'faults',
  testMatch: ['<rootDir>/test/faults/**/*.faults.spec.ts'],
  testTimeout: 600000,
  globalSetup: '<rootDir>/test/global-setup.js',
  maxWorkers: 1,
});
