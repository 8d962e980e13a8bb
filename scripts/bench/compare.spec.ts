import { compareTable, figures, median, parseCompareArgs } from './compare';

describe('bench:compare', () => {
  it('takes --base and --repeat for itself and passes every other option to the harness', () => {
    expect(parseCompareArgs(['--only', 'bulk', '--base', 'abc123', '--scale', '0.5', '--repeat', '3'])).toEqual({
      base: 'abc123',
      repeat: 3,
      harness: ['--only', 'bulk', '--scale', '0.5'],
    });
    expect(parseCompareArgs(['--base', 'HEAD~1']).repeat).toBe(2);
    expect(() => parseCompareArgs(['--only', 'bulk'])).toThrow(/--base/);
    expect(() => parseCompareArgs(['--base', 'x', '--repeat', '0'])).toThrow(/--repeat/);
  });

  it('names each measurement by its path, arrays by what their elements are about, and leaves the setup out', () => {
    const f = figures({
      ingest: { endToEndEventsPerS: 5000.5, config: { durationS: 30 }, cpuMsPerEvent: { postgres: 0.11 } },
      bulk: { runs: 100000, operations: [{ action: 'archive', wallS: 4.9, answer: { archived: 100000 } }] },
      list: { sizes: [{ runs: 1000, scenarios: [{ scenario: 'first page', api: { p99Ms: 5.3, requests: 3000, tool: 'x' } }] }] },
    });
    expect(Object.fromEntries(f)).toEqual({
      'ingest.endToEndEventsPerS': 5000.5,
      'ingest.cpuMsPerEvent.postgres': 0.11,
      'bulk.operations.archive.wallS': 4.9,
      'list.sizes.1000 runs.scenarios.first page.api.p99Ms': 5.3,
    });
  });

  it('puts both sides of each figure in one row with their medians and the change between them', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    const before = [6, 5].map((w) => new Map([['bulk.archive.wallS', w], ['only.before', 1]]));
    const after = [4.5, 5.5].map((w) => new Map([['bulk.archive.wallS', w]]));
    const table = compareTable(before, after).split('\n');
    expect(table).toHaveLength(3);
    expect(table[2]).toBe('| bulk.archive.wallS | 6 / 5 | 4.50 / 5.50 | 5.50 → 5 | -9.1 % |');
  });
});
