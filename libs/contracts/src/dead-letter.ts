/**
 * The dead-letter topic's message format (a contract between the consumers that dead-letter and the
 * operators' tools that inspect and replay): the original key and value, the original headers, and
 * these.
 */
export const DEAD_LETTER_HEADERS = {
  reason: 'dlq-reason',
  topic: 'dlq-original-topic',
  partition: 'dlq-original-partition',
  offset: 'dlq-original-offset',
  /** Absent when the original message had no key. */
  key: 'dlq-original-key',
  consumerGroup: 'dlq-consumer-group',
  /** How the value is written: `utf8` (as received), `base64` (bytes that are not UTF-8), `null`. */
  valueEncoding: 'dlq-value-encoding',
} as const;

export type DeadLetterValueEncoding = 'utf8' | 'base64' | 'null';
