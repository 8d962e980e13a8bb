import { z } from 'zod';

/**
 * What every input must satisfy before it reaches Postgres, which refuses some strings outright:
 * U+0000 in `text` and in `jsonb` (22021 / 22P05), and an unpaired UTF-16 surrogate in `jsonb`
 * (JSON.stringify writes it as a `\udXXX` escape, which jsonb rejects). Input schemas use
 * `storableText()` and `IdSchema`; free-form JSON (trigger payloads, resume bodies, step results)
 * is checked whole with `findUnstorableJson`, which also bounds its nesting.
 */

/** U+0000, or a surrogate that is not half of a pair (with the `u` flag a pair is one code point). */
// eslint-disable-next-line no-control-regex -- matching U+0000 is the point
const UNSTORABLE = /[\u0000\p{Cs}]/u;

export const UNSTORABLE_TEXT_MESSAGE = 'contains a NUL character (U+0000) or an unpaired UTF-16 surrogate, which cannot be stored';

/** True when Postgres can store the string as text and inside jsonb. */
export const isStorableText = (s: string): boolean => !UNSTORABLE.test(s);

/** A string input that Postgres can store; chain `.min()`/`.max()` as on `z.string()`. */
export const storableText = () => z.string().refine(isStorableText, { message: UNSTORABLE_TEXT_MESSAGE });

/**
 * Longest id (run, flow, request, parent run) an input may name. Ids this system makes are 36
 * characters; the bound keeps any value far below Postgres's btree entry limit (2 704 bytes), which
 * a long incompressible id otherwise hits on insert.
 */
export const MAX_ID_LENGTH = 256;

/** An id as inputs name it: 1 to 256 characters of storable text. */
export const IdSchema = storableText().min(1).max(MAX_ID_LENGTH);

/**
 * Deepest nesting of arrays and objects a JSON input may have unless configured otherwise (the
 * gateway's `GATEWAY_JSON_MAX_DEPTH`). Real payloads are a handful of levels deep; a bound keeps
 * recursive code downstream (serialisers, Postgres's jsonb parser) far from its stack limit.
 */
export const DEFAULT_JSON_MAX_DEPTH = 64;

/**
 * Why a JSON value cannot be accepted, and where: `path` is dotted (`a.0.b`) to the offending
 * string or object, `''` for the value itself (and for a value nested too deep).
 */
export interface JsonInputProblem {
  readonly path: string;
  readonly message: string;
}

/**
 * The first reason a parsed JSON value cannot be accepted as input: nested deeper than `maxDepth`
 * (a scalar is depth 0, `[]` and `{}` depth 1), or a key or string Postgres cannot store. Null when
 * it is fine. Iterative, so a value nested 400 000 levels deep costs memory, not stack.
 */
export function findUnstorableJson(value: unknown, maxDepth: number): JsonInputProblem | null {
  // Each entry: a value, its depth, and how to name it (its key and its parent's entry).
  interface Entry {
    readonly value: unknown;
    readonly depth: number;
    readonly key: string | null;
    readonly parent: Entry | null;
  }
  const pathOf = (e: Entry | null): string => {
    const keys: string[] = [];
    for (let at = e; at !== null; at = at.parent) if (at.key !== null) keys.push(at.key);
    return keys.reverse().join('.');
  };
  const stack: Entry[] = [{ value, depth: 0, key: null, parent: null }];
  while (stack.length > 0) {
    const entry = stack.pop() as Entry;
    const v = entry.value;
    if (typeof v === 'string') {
      if (!isStorableText(v)) return { path: pathOf(entry), message: UNSTORABLE_TEXT_MESSAGE };
      continue;
    }
    if (typeof v !== 'object' || v === null) continue;
    const depth = entry.depth + 1;
    // The whole value is named: the path to the cut would be `maxDepth` keys long.
    if (depth > maxDepth) return { path: '', message: `nested deeper than ${maxDepth} levels of arrays and objects` };
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push({ value: v[i], depth, key: String(i), parent: entry });
      continue;
    }
    const keys = Object.keys(v);
    for (let i = keys.length - 1; i >= 0; i--) {
      const key = keys[i];
      if (!isStorableText(key)) return { path: pathOf(entry), message: `has a key that ${UNSTORABLE_TEXT_MESSAGE}` };
      stack.push({ value: (v as Record<string, unknown>)[key], depth, key, parent: entry });
    }
  }
  return null;
}
