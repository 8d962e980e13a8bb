import { decodeCursor, encodeCursor, isCursorTimestamp, type Cursor } from './cursor';
import { buildIdScanQuery, buildListQuery, InvalidCursorError } from './index';

describe('run list cursors', () => {
  const cursor: Cursor = { created: '2024-01-15T10:30:00.123456Z', id: 'run_abc123', direction: 'next' };

  it('round-trips, keeping the microseconds', () => {
    expect(decodeCursor(encodeCursor(cursor))).toEqual(cursor);
    const back: Cursor = { ...cursor, direction: 'previous' };
    expect(decodeCursor(encodeCursor(back))).toEqual(back);
  });

  it('is URL-safe and opaque', () => {
    const s = encodeCursor({ ...cursor, id: 'run/+?&=ü' });
    expect(s).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeCursor(s)?.id).toBe('run/+?&=ü');
  });

  const encode = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

  it.each([
    ['empty', ''],
    ['not base64url', 'abc$%'],
    ['not JSON', Buffer.from('{nope').toString('base64url')],
    ['an array', encode(['2024-01-15T10:30:00.123456Z', 'x', 'n'])],
    ['millisecond precision', encode({ t: '2024-01-15T10:30:00.123Z', i: 'x', d: 'n' })],
    ['a non-UTC offset', encode({ t: '2024-01-15T10:30:00.123456+01:00', i: 'x', d: 'n' })],
    ['an impossible date', encode({ t: '2024-02-30T10:30:00.123456Z', i: 'x', d: 'n' })],
    ['hour 24', encode({ t: '2024-01-15T24:00:00.000000Z', i: 'x', d: 'n' })],
    ['an empty id', encode({ t: '2024-01-15T10:30:00.123456Z', i: '', d: 'n' })],
    ['a numeric id', encode({ t: '2024-01-15T10:30:00.123456Z', i: 7, d: 'n' })],
    ['an unknown direction', encode({ t: '2024-01-15T10:30:00.123456Z', i: 'x', d: 'sideways' })],
    ['an id with a NUL character (Postgres cannot compare it)', encode({ t: '2024-01-15T10:30:00.123456Z', i: 'r\u0000', d: 'n' })],
    ['too long', 'A'.repeat(2000)],
  ])('rejects %s', (_what, value) => {
    expect(decodeCursor(value)).toBeNull();
  });

  it('accepts leap days and rejects non-leap ones', () => {
    expect(isCursorTimestamp('2024-02-29T00:00:00.000001Z')).toBe(true);
    expect(isCursorTimestamp('2023-02-29T00:00:00.000001Z')).toBe(false);
  });
});

describe('list query', () => {
  const base = { projectId: 'p1', limit: 10 };

  it('reads limit + 1 rows in (created desc, id desc) order without OFFSET or COUNT', () => {
    const { sql, params } = buildListQuery(base);
    expect(sql).toMatch(/order by run_views.created desc, run_views.id desc limit \?$/);
    expect(sql).not.toMatch(/offset|count\(/i);
    expect(sql).toContain('archived_at is null');
    // The first: the project again, for the purge column's one read of its last retention range.
    expect(params).toEqual(['p1', 'p1', 11]);
  });

  it('starts after the boundary going forward and before it going back', () => {
    const fwd = buildListQuery({ ...base, cursor: encodeCursor({ created: '2024-01-15T10:30:00.123456Z', id: 'r1', direction: 'next' }) });
    expect(fwd.sql).toContain('(created, id) < (?::timestamptz, ?)');
    expect(fwd.params).toEqual(['p1', 'p1', '2024-01-15T10:30:00.123456Z', 'r1', 11]);
    const back = buildListQuery({ ...base, cursor: encodeCursor({ created: '2024-01-15T10:30:00.123456Z', id: 'r1', direction: 'previous' }) });
    expect(back.sql).toContain('(created, id) > (?::timestamptz, ?)');
    expect(back.sql).toMatch(/order by run_views.created asc, run_views.id asc limit \?$/);
  });

  it('leaves out empty array filters (they would expand to nothing)', () => {
    const { sql } = buildListQuery({ ...base, status: [], tags: [], flowRunIds: [] });
    expect(sql.split(' from run_views where ')[1]).toBe('project_id = ? and archived_at is null order by run_views.created desc, run_views.id desc limit ?');
  });

  it('with archived runs: the same range of the unarchived and the archived runs, limit + 1 of each, merged', () => {
    const cursor = encodeCursor({ created: '2024-01-15T10:30:00.123456Z', id: 'r1', direction: 'previous' });
    const { sql, params } = buildListQuery({ ...base, flowId: 'f1', includeArchived: true, cursor });
    const side = (archived: string) =>
      `where project_id = ? and flow_id = ? and (created, id) > (?::timestamptz, ?) and archived_at is ${archived} order by run_views.created asc, run_views.id asc limit ?)`;
    expect(sql).toContain(`${side('null')} union all (`);
    expect(sql).toContain(side('not null'));
    expect(sql).toMatch(/\) as both_sets order by range_key asc, id asc limit \?$/);
    const one = ['p1', 'p1', 'f1', '2024-01-15T10:30:00.123456Z', 'r1', 11];
    expect(params).toEqual([...one, ...one, 11]);
  });

  it('refuses a bad cursor and an out-of-range limit', () => {
    expect(() => buildListQuery({ ...base, cursor: 'garbage!' })).toThrow(InvalidCursorError);
    expect(() => buildListQuery({ ...base, limit: 0 })).toThrow(RangeError);
    expect(() => buildListQuery({ ...base, limit: 101 })).toThrow(RangeError);
  });
});

describe('bulk id scan query', () => {
  it('reads ids and keys only, after the boundary, limit rows, newest first', () => {
    const { sql, params } = buildIdScanQuery(
      { projectId: 'p1', status: ['RUNNING', 'PAUSED'], excludeFlowRunIds: ['r9'] },
      { created: '2024-01-15T10:30:00.123456Z', id: 'r1' },
      500,
    );
    expect(sql).toMatch(/^select id, to_char\(created .*\) as created_key from run_views where /);
    expect(sql).toContain('status in (?) and id not in (?) and (created, id) < (?::timestamptz, ?) and archived_at is null');
    expect(sql).toMatch(/order by run_views.created desc, run_views.id desc limit \?$/);
    expect(sql).not.toMatch(/offset|count\(|union/i);
    expect(params).toEqual(['p1', ['RUNNING', 'PAUSED'], ['r9'], '2024-01-15T10:30:00.123456Z', 'r1', 500]);
  });

  it('with archived runs: both sets read from the boundary, a page of each at most, merged in list order', () => {
    const { sql, params } = buildIdScanQuery({ projectId: 'p1', includeArchived: true }, { created: '2024-01-15T10:30:00.123456Z', id: 'r1' }, 500);
    expect(sql).toContain('archived_at is null order by run_views.created desc, run_views.id desc limit ?) union all (select id, to_char(');
    expect(sql).toContain('archived_at is not null order by run_views.created desc, run_views.id desc limit ?)');
    expect(sql).toMatch(/\) as both_sets order by range_key desc, id desc limit \?$/);
    const one = ['p1', '2024-01-15T10:30:00.123456Z', 'r1', 500];
    expect(params).toEqual([...one, ...one, 500]);
  });

  it('starts at the top without a boundary and refuses an out-of-range page', () => {
    expect(buildIdScanQuery({ projectId: 'p1' }, null, 3).params).toEqual(['p1', 3]);
    expect(() => buildIdScanQuery({ projectId: 'p1' }, null, 0)).toThrow(RangeError);
    expect(() => buildIdScanQuery({ projectId: 'p1' }, null, 10_001)).toThrow(RangeError);
  });
});
