import { DEAD_LETTER_HEADERS as H, type DeadLetterValueEncoding } from '@flowruns/contracts';
import type { Kafka } from '@flowruns/messaging';
import { v7 as uuidv7 } from 'uuid';

/** One message of the dead-letter topic, as an operator sees it. */
export interface DeadLetter {
  readonly partition: number;
  readonly offset: string;
  readonly key: string | null;
  /** The original value's bytes (decoded from the dead-letter encoding). */
  readonly value: Buffer | null;
  readonly headers: Record<string, string>;
  readonly reason: string;
  readonly origin: { topic: string; partition: string; offset: string; consumerGroup: string };
}

const decodeValue = (text: string, encoding: DeadLetterValueEncoding | undefined): Buffer | null =>
  encoding === 'null' ? null : encoding === 'base64' ? Buffer.from(text, 'base64') : Buffer.from(text, 'utf8');

/**
 * Every message on `topic` from its start to the end offsets measured when called, read with a
 * throwaway consumer group that commits nothing and is deleted afterwards. Fails past `timeoutMs`.
 */
export async function readDeadLetters(kafka: Kafka, topic: string, timeoutMs = 30_000): Promise<DeadLetter[]> {
  const admin = kafka.admin();
  await admin.connect();
  const groupId = `flow-runs-cli-${uuidv7()}`;
  try {
    const ends = (await admin.fetchTopicOffsets(topic)).filter((p) => BigInt(p.high) > BigInt(p.low));
    if (ends.length === 0) return [];
    const last = new Map(ends.map((p) => [p.partition, BigInt(p.high) - 1n]));
    const out: DeadLetter[] = [];
    const consumer = kafka.consumer({ groupId, allowAutoTopicCreation: false });
    await consumer.connect();
    try {
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`could not read ${topic} to its end within ${timeoutMs} ms`)), timeoutMs);
        consumer
          .run({
            autoCommit: false,
            eachMessage: async ({ partition, message }) => {
              const end = last.get(partition);
              if (end === undefined || BigInt(message.offset) > end) return;
              const headers = Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)]));
              out.push({
                partition,
                offset: message.offset,
                key: message.key ? message.key.toString() : null,
                value: decodeValue(message.value?.toString('utf8') ?? '', headers[H.valueEncoding] as DeadLetterValueEncoding | undefined),
                headers,
                reason: headers[H.reason] ?? '(no reason)',
                origin: {
                  topic: headers[H.topic] ?? '?',
                  partition: headers[H.partition] ?? '?',
                  offset: headers[H.offset] ?? '?',
                  consumerGroup: headers[H.consumerGroup] ?? '?',
                },
              });
              if (BigInt(message.offset) === end) last.delete(partition);
              if (last.size === 0) {
                clearTimeout(timer);
                resolve();
              }
            },
          })
          .catch(reject);
      });
    } finally {
      await consumer.disconnect();
    }
    return out.sort((a, b) => a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)));
  } finally {
    await admin.deleteGroups([groupId]).catch(() => undefined);
    await admin.disconnect();
  }
}

/** The original message again: its key, value and headers without the dead-letter ones, marked as a replay. */
export function replayMessage(d: DeadLetter): { key: string | null; value: Buffer | null; headers: Record<string, string> } {
  const dlq = new Set<string>(Object.values(H));
  const headers = Object.fromEntries(Object.entries(d.headers).filter(([k]) => !dlq.has(k)));
  headers['dlq-replayed-from'] = `${d.partition}:${d.offset}`;
  return { key: d.headers[H.key] ?? d.key, value: d.value, headers };
}
