import type { IncomingMessage } from '@flowruns/messaging';
import { DEAD_LETTER_HEADERS as H, deadLetterMessage } from './dead-letter';

const message = (over: Partial<IncomingMessage> = {}): IncomingMessage => ({
  topic: 'flow-run-events',
  partition: 3,
  offset: '42',
  key: 'run-1',
  value: Buffer.from('{not json'),
  headers: { traceparent: '00-abc-def-01', 'ce-type': 'flowrun.triggered.v1' },
  ...over,
});

describe('deadLetterMessage', () => {
  it('keeps the key, value and headers and names the reason and the original position', () => {
    expect(deadLetterMessage(message(), 'not JSON: Unexpected token', 'projector')).toEqual({
      key: 'run-1',
      value: '{not json',
      headers: {
        traceparent: '00-abc-def-01',
        'ce-type': 'flowrun.triggered.v1',
        [H.reason]: 'not JSON: Unexpected token',
        [H.topic]: 'flow-run-events',
        [H.partition]: '3',
        [H.offset]: '42',
        [H.key]: 'run-1',
        [H.consumerGroup]: 'projector',
        [H.valueEncoding]: 'utf8',
      },
    });
  });

  it('keeps bytes that are not UTF-8 as base64, and says so', () => {
    const bytes = Buffer.from([0xff, 0xfe, 0x00, 0x41]);
    const m = deadLetterMessage(message({ value: bytes }), 'not JSON', 'g');
    expect(m.headers[H.valueEncoding]).toBe('base64');
    expect(Buffer.from(m.value, 'base64')).toEqual(bytes);
  });

  it('marks a null value and a missing key rather than inventing them', () => {
    const m = deadLetterMessage(message({ value: null, key: null }), 'empty message value', 'g');
    expect(m.headers[H.valueEncoding]).toBe('null');
    expect(m.value).toBe('');
    expect(m.key).toBe('');
    expect(m.headers[H.key]).toBeUndefined();
  });

  it('bounds a very long reason', () => {
    const m = deadLetterMessage(message(), 'x'.repeat(10_000), 'g');
    expect(m.headers[H.reason].length).toBe(2000);
  });
});
