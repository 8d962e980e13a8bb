/** End-to-end tests: the built apps run as processes, driven over HTTP and Kafka. */
module.exports = require('./jest.preset')({
  displayName: 'e2e',
  testMatch: ['**/*.e2e.spec.ts'],
  testTimeout: 180000,
  globalSetup: '<rootDir>/test/global-setup.js',
  maxWorkers: 1,
});
