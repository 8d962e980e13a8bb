/** Integration tests against real Postgres and real Kafka (addresses from the environment). */
module.exports = require('./jest.preset')({
  displayName: 'int',
  testMatch: ['**/*.int.spec.ts'],
  testTimeout: 120000,
  globalSetup: '<rootDir>/test/global-setup.js',
  maxWorkers: 2,
});
