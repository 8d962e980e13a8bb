/** Pure, fast tests: `*.spec.ts` that are neither integration nor end-to-end. */
module.exports = require('./jest.preset')({
  displayName: 'unit',
  testMatch: ['**/*.spec.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/', '\\.int\\.spec\\.ts$', '\\.e2e\\.spec\\.ts$', '\\.faults\\.spec\\.ts$'],
});
