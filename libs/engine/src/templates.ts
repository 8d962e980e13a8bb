/**
 * Templates in step settings: `{{trigger.<path>}}` and `{{steps.<name>.output.<path>}}`.
 *
 * Rules (the flow author's contract):
 * - A string that is exactly one template (`"{{trigger.customer}}"`, spaces inside the braces
 *   allowed) is replaced by the value itself, keeping its JSON type: an object stays an object,
 *   a number a number.
 * - A template inside a longer string is rendered into it: strings as they are, numbers and
 *   booleans in their JSON form, objects and arrays as JSON; null (and a missing path) as the
 *   empty string, so `"Hello {{trigger.name}}!"` never reads `"Hello null!"`.
 * - A path that does not exist resolves to **null** (never `undefined`, which JSON cannot carry):
 *   a missing key, an index past the end, a step that has not succeeded, a path into a string.
 * - Paths are dot-separated keys; array items by index, `items.0.name` or `items[0].name`. Only a
 *   value's own keys are followed (`{{trigger.constructor}}` is null, not a function).
 * - `{{…}}` text that is neither form (e.g. `{{steps.x.input}}`, `{{ now }}`) is not a template and
 *   is left as written.
 * - Objects and arrays are resolved recursively, keys untouched; other values pass through.
 */

/** What templates read: the trigger payload and the outputs of the steps that succeeded so far. */
export interface TemplateContext {
  readonly trigger: unknown;
  readonly steps: Readonly<Record<string, { readonly output: unknown }>>;
}

/** A template's source: the trigger, or a step's output, and the path into it. */
export type TemplateRef =
  | { readonly source: 'trigger'; readonly path: readonly string[] }
  | { readonly source: 'step'; readonly stepName: string; readonly path: readonly string[] };

const TEMPLATE = /\{\{\s*([^{}]*?)\s*\}\}/g;
const WHOLE = /^\{\{\s*([^{}]*?)\s*\}\}$/;

/** Splits `a.b[0].c` into `['a', 'b', '0', 'c']`; null when it is not a path. */
function splitPath(expr: string): string[] | null {
  if (expr === '') return [];
  const parts: string[] = [];
  for (const segment of expr.split('.')) {
    const m = /^([^[\]\s]*)((?:\[\d+\])*)$/.exec(segment);
    if (!m || (m[1] === '' && m[2] === '')) return null;
    if (m[1] !== '') parts.push(m[1]);
    for (const idx of m[2].matchAll(/\[(\d+)\]/g)) parts.push(idx[1]);
  }
  return parts;
}

/** Parses the inside of `{{ … }}`; null when it is not one of the two template forms. */
export function parseTemplate(expr: string): TemplateRef | null {
  const parts = splitPath(expr.trim());
  if (!parts || parts.length === 0) return null;
  if (parts[0] === 'trigger') return { source: 'trigger', path: parts.slice(1) };
  if (parts[0] === 'steps' && parts.length >= 3 && parts[2] === 'output') {
    return { source: 'step', stepName: parts[1], path: parts.slice(3) };
  }
  return null;
}

const own = (o: object, key: string): boolean => Object.prototype.hasOwnProperty.call(o, key);

/** Follows `path` into `value`; null wherever it leads nowhere. */
export function readPath(value: unknown, path: readonly string[]): unknown {
  let cur: unknown = value;
  for (const key of path) {
    if (cur === null || cur === undefined) return null;
    if (Array.isArray(cur)) {
      if (!/^\d+$/.test(key)) return null;
      cur = cur[Number(key)];
    } else if (typeof cur === 'object') {
      cur = own(cur, key) ? (cur as Record<string, unknown>)[key] : null;
    } else {
      return null;
    }
  }
  return cur === undefined ? null : cur;
}

function lookup(ref: TemplateRef, ctx: TemplateContext): unknown {
  if (ref.source === 'trigger') return readPath(ctx.trigger, ref.path);
  if (!own(ctx.steps, ref.stepName)) return null;
  return readPath(ctx.steps[ref.stepName].output, ref.path);
}

function render(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value;
  return JSON.stringify(value);
}

function resolveString(s: string, ctx: TemplateContext): unknown {
  const whole = WHOLE.exec(s);
  if (whole) {
    const ref = parseTemplate(whole[1]);
    if (ref) return lookup(ref, ctx);
  }
  return s.replace(TEMPLATE, (text, expr: string) => {
    const ref = parseTemplate(expr);
    return ref ? render(lookup(ref, ctx)) : text;
  });
}

/** Resolves every template in `value` (see the rules above). Pure; `value` is not modified. */
export function resolveTemplates(value: unknown, ctx: TemplateContext): unknown {
  if (typeof value === 'string') return resolveString(value, ctx);
  if (Array.isArray(value)) return value.map((v) => resolveTemplates(v, ctx));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      // defineProperty, not assignment: a `__proto__` key from JSON must stay a plain key.
      Object.defineProperty(out, k, { value: resolveTemplates(v, ctx), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  return value;
}

/** Every template reference in `value` (for validating a flow: which steps do its settings name?). */
export function templateRefs(value: unknown): TemplateRef[] {
  if (typeof value === 'string') {
    return [...value.matchAll(TEMPLATE)].map((m) => parseTemplate(m[1])).filter((r): r is TemplateRef => r !== null);
  }
  if (Array.isArray(value)) return value.flatMap(templateRefs);
  if (value !== null && typeof value === 'object') return Object.values(value).flatMap(templateRefs);
  return [];
}
