import { randomInt } from 'node:crypto';
import type { ICustomPartitioner } from 'kafkajs';

/**
 * Kafka's murmur2 (the Java client's `Utils.murmur2`, which chooses a keyed message's partition)
 * in 32-bit integer arithmetic. kafkajs's own copy computes the same value through its 64-bit
 * `Long` emulation, which cost the relay ~3.5 % of the command service's CPU. The partitions must
 * stay exactly the ones every earlier message of a run went to, so this is checked against
 * kafkajs's implementation (`partitioner.spec.ts`).
 */
export function murmur2(key: string | Buffer): number {
  const data = typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
  const length = data.length;
  const m = 0x5bd1e995;
  let h = 0x9747b28c ^ length;
  const whole = length & ~3;
  for (let i = 0; i < whole; i += 4) {
    let k = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m) ^ k;
  }
  const rest = length & 3;
  if (rest > 0) {
    if (rest === 3) h ^= data[whole + 2] << 16;
    if (rest >= 2) h ^= data[whole + 1] << 8;
    h ^= data[whole];
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}

/**
 * kafkajs's `Partitioners.DefaultPartitioner` (the Java client's choice for keyed messages:
 * `murmur2(key) & 0x7fffffff` modulo the partition count) with the fast murmur2 above; keyless
 * messages go round-robin over the partitions that have a leader, as there.
 */
export const javaCompatiblePartitioner: ICustomPartitioner = () => {
  const counters = new Map<string, number>();
  return ({ topic, partitionMetadata, message }) => {
    if (message.partition !== null && message.partition !== undefined) return message.partition;
    if (message.key !== null && message.key !== undefined) return (murmur2(message.key) & 0x7fffffff) % partitionMetadata.length;
    const next = (counters.get(topic) ?? randomInt(2 ** 31)) + 1;
    counters.set(topic, next);
    const available = partitionMetadata.filter((p) => p.leader >= 0);
    if (available.length > 0) return available[(next & 0x7fffffff) % available.length].partitionId;
    return (next & 0x7fffffff) % partitionMetadata.length;
  };
};
