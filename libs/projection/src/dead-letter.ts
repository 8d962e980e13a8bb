import { DEAD_LETTER_HEADERS, type DeadLetterValueEncoding } from '@flowruns/contracts';
import type { IncomingMessage, OutgoingMessage } from '@flowruns/messaging';

export { DEAD_LETTER_HEADERS, type DeadLetterValueEncoding };

/** Kafka headers are small by convention; a zod report on a large bad envelope is not. */
const MAX_REASON_LENGTH = 2000;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The publisher port carries text values. A value that is valid UTF-8 (every JSON message) goes
 * through unchanged; other bytes are base64 so that nothing of the original is lost.
 */
function encodeValue(value: Buffer | null): { value: string; encoding: DeadLetterValueEncoding } {
  if (value === null) return { value: '', encoding: 'null' };
  try {
    return { value: utf8.decode(value), encoding: 'utf8' };
  } catch {
    return { value: value.toString('base64'), encoding: 'base64' };
  }
}

/** Builds the dead-letter copy of a message that could not be parsed: original key, value, headers. */
export function deadLetterMessage(m: IncomingMessage, reason: string, consumerGroup: string): OutgoingMessage {
  const { value, encoding } = encodeValue(m.value);
  const headers: Record<string, string> = {
    ...m.headers,
    [DEAD_LETTER_HEADERS.reason]:
      reason.length > MAX_REASON_LENGTH ? `${reason.slice(0, MAX_REASON_LENGTH - 1)}…` : reason,
    [DEAD_LETTER_HEADERS.topic]: m.topic,
    [DEAD_LETTER_HEADERS.partition]: String(m.partition),
    [DEAD_LETTER_HEADERS.offset]: m.offset,
    [DEAD_LETTER_HEADERS.consumerGroup]: consumerGroup,
    [DEAD_LETTER_HEADERS.valueEncoding]: encoding,
  };
  if (m.key !== null) headers[DEAD_LETTER_HEADERS.key] = m.key;
  // Same key as the original, so a replay tool can put it back on the run's partition.
  return { key: m.key ?? '', value, headers };
}
