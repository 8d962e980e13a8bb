import { randomBytes, randomUUID } from 'node:crypto';
import { Partitioners, type PartitionerArgs } from 'kafkajs';
import { javaCompatiblePartitioner, murmur2 } from './partitioner';

// kafkajs's own (Java-compatible) murmur2: the reference the fast one must equal, bit for bit.
const reference = require('kafkajs/src/producer/partitioners/default/murmur2') as (key: string | Buffer) => number;

const metadata = (n: number, leaderless: number[] = []): PartitionerArgs['partitionMetadata'] =>
  Array.from({ length: n }, (_, i) => ({ partitionId: i, leader: leaderless.includes(i) ? -1 : 0, replicas: [0], isr: [0], partitionErrorCode: 0 }));

describe('murmur2 / javaCompatiblePartitioner', () => {
  it('equals kafkajs’s murmur2 for run ids, every length 0–64, non-ASCII text and random bytes', () => {
    const keys: (string | Buffer)[] = [];
    for (let i = 0; i < 2000; i++) keys.push(randomUUID());
    for (let len = 0; len <= 64; len++) keys.push('x'.repeat(len), randomBytes(len), randomBytes(len).toString('hex').slice(0, len));
    keys.push('ünïcödé', '日本語のキー', '🙂 emoji', '\u0080\u07ff\u0800');
    for (let i = 0; i < 500; i++) keys.push(randomBytes(1 + (i % 40)));
    for (const key of keys) expect([key, murmur2(key)]).toEqual([key, reference(key)]);
  });

  it('matches the Java client’s values for known keys', () => {
    // From Apache Kafka's UtilsTest.testMurmur2.
    const cases: [string, number][] = [
      ['21', -973932308],
      ['foobar', -790332482],
      ['a-little-bit-long-string', -985981536],
      ['a-little-bit-longer-string', -1486304829],
      ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
    ];
    for (const [key, expected] of cases) expect(murmur2(key)).toBe(expected);
  });

  it('chooses the same partition as kafkajs’s DefaultPartitioner for keyed messages', () => {
    const ours = javaCompatiblePartitioner();
    const theirs = Partitioners.DefaultPartitioner();
    for (const n of [1, 3, 12, 50]) {
      for (let i = 0; i < 500; i++) {
        const args = { topic: 't', partitionMetadata: metadata(n), message: { key: randomUUID(), value: 'v' } };
        expect(ours(args)).toBe(theirs(args));
      }
    }
  });

  it('keeps an explicit partition, and spreads keyless messages over partitions that have a leader', () => {
    const choose = javaCompatiblePartitioner();
    expect(choose({ topic: 't', partitionMetadata: metadata(12), message: { key: 'k', value: 'v', partition: 7 } })).toBe(7);
    const seen = new Set<number>();
    for (let i = 0; i < 40; i++) seen.add(choose({ topic: 't', partitionMetadata: metadata(4, [1]), message: { value: 'v' } }));
    expect([...seen].sort()).toEqual([0, 2, 3]);
  });
});
