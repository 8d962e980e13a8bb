import { GroupCommit, type ItemOutcome } from './group-commit';

/** A batch the test ends by hand. */
interface Held {
  readonly items: readonly string[];
  readonly answer: (outcomes?: readonly ItemOutcome<string>[]) => void;
  readonly fail: (e: unknown) => void;
}

function holdingGroup(opts: { maxItems?: number; maxInFlight?: number; weight?: { of: (item: string) => number; max: number } } = {}) {
  const batches: Held[] = [];
  const group = new GroupCommit<string, string>({
    maxItems: opts.maxItems ?? 100,
    maxInFlight: opts.maxInFlight ?? 1,
    weight: opts.weight,
    apply: (items) =>
      new Promise((resolve, reject) =>
        batches.push({ items, answer: (outcomes) => resolve(outcomes ?? items.map((i) => ({ ok: `done ${i}` }))), fail: reject }),
      ),
  });
  return { group, batches };
}

/** Lets the queued setImmediate (and the promise reactions before it) run. */
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('GroupCommit', () => {
  it('applies a lone item at the next turn and answers it', async () => {
    const { group, batches } = holdingGroup();
    const answer = group.submit('a');
    await turn();
    expect(batches.map((b) => b.items)).toEqual([['a']]);
    batches[0].answer();
    await expect(answer).resolves.toBe('done a');
  });

  it('applies the items of one turn together, each caller answered its own outcome', async () => {
    const { group, batches } = holdingGroup();
    const answers = ['a', 'b', 'c'].map((i) => group.submit(i));
    await turn();
    expect(batches.map((b) => b.items)).toEqual([['a', 'b', 'c']]);
    batches[0].answer([{ ok: 'A' }, { error: new Error('b refused') }, { ok: 'C' }]);
    await expect(answers[0]).resolves.toBe('A');
    await expect(answers[1]).rejects.toThrow('b refused');
    await expect(answers[2]).resolves.toBe('C');
  });

  it('keeps what arrives while every slot is busy for the next batch, all of it together', async () => {
    const { group, batches } = holdingGroup({ maxInFlight: 1 });
    const first = group.submit('a');
    await turn();
    const later = ['b', 'c', 'd'].map((i) => group.submit(i));
    await turn();
    expect(batches).toHaveLength(1);
    expect(group.waiting).toBe(3);
    batches[0].answer();
    await first;
    await turn();
    expect(batches.map((b) => b.items)).toEqual([['a'], ['b', 'c', 'd']]);
    batches[1].answer();
    await expect(Promise.all(later)).resolves.toEqual(['done b', 'done c', 'done d']);
    expect(group.waiting).toBe(0);
  });

  it('splits by items and by weight, and sends an item heavier than the limit alone', async () => {
    const byCount = holdingGroup({ maxItems: 2, maxInFlight: 4 });
    ['a', 'b', 'c', 'd', 'e'].forEach((i) => void byCount.group.submit(i));
    await turn();
    expect(byCount.batches.map((b) => b.items)).toEqual([['a', 'b'], ['c', 'd'], ['e']]);

    const byWeight = holdingGroup({ maxInFlight: 4, weight: { of: (i) => i.length, max: 5 } });
    ['xx', 'yyy', 'z', 'heavier-than-five', 'w'].forEach((i) => void byWeight.group.submit(i));
    await turn();
    expect(byWeight.batches.map((b) => b.items)).toEqual([['xx', 'yyy'], ['z'], ['heavier-than-five'], ['w']]);
  });

  it('fails every caller of a batch that fails, and only those', async () => {
    const { group, batches } = holdingGroup({ maxItems: 2, maxInFlight: 2 });
    const answers = ['a', 'b', 'c'].map((i) => group.submit(i));
    await turn();
    batches[0].fail(new Error('the transaction failed'));
    batches[1].answer();
    await expect(answers[0]).rejects.toThrow('the transaction failed');
    await expect(answers[1]).rejects.toThrow('the transaction failed');
    await expect(answers[2]).resolves.toBe('done c');
  });

  it('fails a batch whose outcomes do not match its items one to one', async () => {
    const { group, batches } = holdingGroup();
    const answers = ['a', 'b'].map((i) => group.submit(i));
    await turn();
    batches[0].answer([{ ok: 'A' }]);
    await expect(answers[0]).rejects.toThrow('a batch of 2 items answered 1 outcomes');
    await expect(answers[1]).rejects.toThrow('a batch of 2 items answered 1 outcomes');
  });

  it('refuses a group that could never apply anything', () => {
    expect(() => new GroupCommit({ maxItems: 0, maxInFlight: 1, apply: async () => [] })).toThrow('at least 1');
  });
});
