/** End-to-end tests: the built apps run as processes, driven over HTTP and Kafka. */
module.exports = require('./jest.preset')({
  displayName: 'e2e',
  testMatch: ['**/*.e2e.spec.ts'],
  testTimeout: 180000,
  globalSetup: '<rootDir>/test/global-setup.js',
  // Two suites at once: each starts its own isolated system (database, topics, groups, ports, its own
  // broker or proxy for outages), and most of a suite's time is waiting on processes (12.4 → 10.3 min
  // on a slow day of this 2-core machine).
  maxWorkers: 2,
});
