import { CreateFlowSchema, TriggerRunRequestSchema } from './api';
import { BulkRunFilterSchema, ResumeRunRequestSchema } from './internal';
import { IdSchema, MAX_ID_LENGTH, UNSTORABLE_TEXT_MESSAGE, findUnstorableJson, isStorableText, storableText } from './text';

const NUL = String.fromCharCode(0);
const nested = (depth: number, shape: 'array' | 'object'): unknown => {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = shape === 'array' ? [v] : { a: v };
  return v;
};

describe('storable text (what Postgres accepts in text and jsonb)', () => {
  it('refuses U+0000 and unpaired surrogates, accepts everything else', () => {
    expect(isStorableText('plain, ü, 👩‍👩‍👧‍👦, \ufeff')).toBe(true);
    expect(isStorableText(`a${NUL}b`)).toBe(false);
    expect(isStorableText('\ud800')).toBe(false);
    expect(isStorableText('x\udc00y')).toBe(false);
  });

  it('makes every id and string field of an input schema refuse U+0000 with a message that says why', () => {
    expect(IdSchema.safeParse(`r${NUL}`).error?.issues[0].message).toBe(UNSTORABLE_TEXT_MESSAGE);
    expect(IdSchema.safeParse('r'.repeat(MAX_ID_LENGTH)).success).toBe(true);
    expect(IdSchema.safeParse('r'.repeat(MAX_ID_LENGTH + 1)).success).toBe(false);
    expect(storableText().min(1).safeParse('').success).toBe(false);
    const flow = CreateFlowSchema.safeParse({ projectId: 'p', displayName: `a${NUL}`, steps: [] });
    expect(flow.error?.issues[0]).toMatchObject({ path: ['displayName'], message: UNSTORABLE_TEXT_MESSAGE });
    expect(TriggerRunRequestSchema.safeParse({ projectId: 'p', payload: {}, parentRunId: NUL }).error?.issues[0].path).toEqual(['parentRunId']);
    expect(TriggerRunRequestSchema.safeParse({ projectId: 'p'.repeat(129), payload: {} }).success).toBe(false);
    expect(ResumeRunRequestSchema.safeParse({ requestId: `q${NUL}`, body: {} }).success).toBe(false);
    expect(BulkRunFilterSchema.safeParse({ flowId: NUL }).error?.issues[0].path).toEqual(['flowId']);
  });
});

describe('findUnstorableJson', () => {
  it('accepts ordinary JSON, scalars and a value exactly at the depth bound', () => {
    expect(findUnstorableJson({ a: [1, 'x', null, true, { b: 'ü' }] }, 64)).toBeNull();
    expect(findUnstorableJson('text', 0)).toBeNull();
    expect(findUnstorableJson(nested(64, 'array'), 64)).toBeNull();
    expect(findUnstorableJson(nested(64, 'object'), 64)).toBeNull();
    expect(findUnstorableJson(undefined, 1)).toBeNull();
  });

  it('refuses one level past the bound, for arrays and objects alike, naming the whole value', () => {
    expect(findUnstorableJson(nested(65, 'array'), 64)).toEqual({ path: '', message: 'nested deeper than 64 levels of arrays and objects' });
    expect(findUnstorableJson(nested(65, 'object'), 64)?.path).toBe('');
    expect(findUnstorableJson([], 0)).not.toBeNull();
  });

  it('walks 400 000 levels without recursion (no stack overflow)', () => {
    const deep = JSON.parse('['.repeat(400_000) + ']'.repeat(400_000));
    expect(findUnstorableJson(deep, 64)?.message).toMatch(/deeper than 64/);
    expect(findUnstorableJson(deep, 1_000_000)).toBeNull();
  });

  it('finds U+0000 or an unpaired surrogate in any string or key, with its dotted path', () => {
    expect(findUnstorableJson(JSON.parse('{"a":[1,{"b":"x\\u0000"}]}'), 64)).toEqual({ path: 'a.1.b', message: UNSTORABLE_TEXT_MESSAGE });
    expect(findUnstorableJson(JSON.parse('"\\u0000"'), 64)).toEqual({ path: '', message: UNSTORABLE_TEXT_MESSAGE });
    expect(findUnstorableJson(JSON.parse('{"ok":{"k\\u0000":1}}'), 64)).toEqual({ path: 'ok', message: `has a key that ${UNSTORABLE_TEXT_MESSAGE}` });
    expect(findUnstorableJson(JSON.parse('["\\ud800"]'), 64)?.path).toBe('0');
    expect(findUnstorableJson(JSON.parse('["\\ud83d\\ude00"]'), 64)).toBeNull();
  });
});
