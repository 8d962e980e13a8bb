/**
 * A large JSON document as a statement parameter: its UTF-8 bytes, read back with `JSONB_PARAM`.
 * The runners inline parameters into the SQL text (MikroORM's `formatQuery`), which escapes a
 * string one character at a time — for a batch's megabyte of JSON most of the statement's CPU and
 * garbage — while bytes go out as one hex literal (`Buffer.toString('hex')`, native).
 */
export const jsonParam = (value: unknown): Buffer => Buffer.from(JSON.stringify(value), 'utf8');

/** The SQL that reads a `jsonParam` as jsonb. */
export const JSONB_PARAM = `convert_from(?::bytea, 'UTF8')::jsonb`;
