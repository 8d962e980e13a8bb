import { parseTemplate, readPath, resolveTemplates, templateRefs, type TemplateContext } from './templates';

const ctx: TemplateContext = {
  trigger: { customerId: 42, name: 'Ada', tags: ['a', 'b'], nested: { deep: { x: true } }, items: [{ sku: 'k1' }, { sku: 'k2' }], nothing: null },
  steps: {
    fetch: { output: { status: 200, body: { id: 42, name: 'Ada', ok: false } } },
    count: { output: 7 },
  },
};

describe('resolveTemplates', () => {
  it('keeps the JSON type of a setting that is exactly one template', () => {
    expect(resolveTemplates('{{trigger.customerId}}', ctx)).toBe(42);
    expect(resolveTemplates('{{ trigger.nested }}', ctx)).toEqual({ deep: { x: true } });
    expect(resolveTemplates('{{trigger.tags}}', ctx)).toEqual(['a', 'b']);
    expect(resolveTemplates('{{steps.fetch.output.body.ok}}', ctx)).toBe(false);
    expect(resolveTemplates('{{steps.count.output}}', ctx)).toBe(7);
    expect(resolveTemplates('{{trigger}}', ctx)).toBe(ctx.trigger);
    expect(resolveTemplates('{{trigger.nothing}}', ctx)).toBeNull();
  });

  it('renders templates inside a longer string: strings as they are, other values as JSON', () => {
    expect(resolveTemplates('Hello {{steps.fetch.output.body.name}}!', ctx)).toBe('Hello Ada!');
    expect(resolveTemplates('/customers/{{trigger.customerId}}', ctx)).toBe('/customers/42');
    expect(resolveTemplates('{{trigger.name}}-{{trigger.customerId}}', ctx)).toBe('Ada-42');
    expect(resolveTemplates('tags={{trigger.tags}} ok={{steps.fetch.output.body.ok}}', ctx)).toBe('tags=["a","b"] ok=false');
    expect(resolveTemplates('x {{trigger.nested.deep}}', ctx)).toBe('x {"x":true}');
  });

  it('resolves a missing path to null, and renders null as the empty string inside a string', () => {
    expect(resolveTemplates('{{trigger.missing}}', ctx)).toBeNull();
    expect(resolveTemplates('{{trigger.name.first}}', ctx)).toBeNull(); // a path into a string
    expect(resolveTemplates('{{trigger.items.5.sku}}', ctx)).toBeNull();
    expect(resolveTemplates('{{steps.unknown.output.x}}', ctx)).toBeNull();
    expect(resolveTemplates('{{steps.fetch.output.body.missing.deeper}}', ctx)).toBeNull();
    expect(resolveTemplates('Hello {{trigger.missing}}!', ctx)).toBe('Hello !');
    expect(resolveTemplates('[{{trigger.nothing}}]', ctx)).toBe('[]');
  });

  it('reads array items by dot index and by brackets', () => {
    expect(resolveTemplates('{{trigger.items.1.sku}}', ctx)).toBe('k2');
    expect(resolveTemplates('{{trigger.items[0].sku}}', ctx)).toBe('k1');
    expect(resolveTemplates('{{trigger.items[1]}}', ctx)).toEqual({ sku: 'k2' });
  });

  it('resolves objects and arrays recursively and leaves other values and keys alone', () => {
    const settings = {
      method: 'POST',
      url: 'http://x/{{trigger.customerId}}',
      body: { who: '{{steps.fetch.output.body}}', list: ['{{trigger.name}}', 3, null, true], '{{trigger.name}}': 1 },
      n: 5,
    };
    expect(resolveTemplates(settings, ctx)).toEqual({
      method: 'POST',
      url: 'http://x/42',
      body: { who: { id: 42, name: 'Ada', ok: false }, list: ['Ada', 3, null, true], '{{trigger.name}}': 1 },
      n: 5,
    });
    expect(settings.url).toBe('http://x/{{trigger.customerId}}'); // not modified
  });

  it('leaves text that is not a template form as written', () => {
    expect(resolveTemplates('{{steps.fetch.input}}', ctx)).toBe('{{steps.fetch.input}}');
    expect(resolveTemplates('{{ now }} and {{trigger.name}}', ctx)).toBe('{{ now }} and Ada');
    expect(resolveTemplates('{{}}', ctx)).toBe('{{}}');
    expect(resolveTemplates('{ {trigger.name} }', ctx)).toBe('{ {trigger.name} }');
  });

  it('follows own keys only', () => {
    expect(resolveTemplates('{{trigger.constructor}}', ctx)).toBeNull();
    expect(resolveTemplates('{{trigger.__proto__}}', ctx)).toBeNull();
    expect(resolveTemplates('{{trigger.tags.length}}', ctx)).toBeNull();
    const fromJson = JSON.parse('{"__proto__": "{{trigger.name}}"}') as Record<string, unknown>;
    const out = resolveTemplates(fromJson, ctx) as Record<string, unknown>;
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.prototype.hasOwnProperty.call(out, '__proto__')).toBe(true);
  });

  it('treats a trigger purged to null as null everywhere', () => {
    expect(resolveTemplates('{{trigger.x}}', { trigger: null, steps: {} })).toBeNull();
  });
});

describe('parseTemplate / readPath / templateRefs', () => {
  it('parses the two forms', () => {
    expect(parseTemplate('trigger.a.b')).toEqual({ source: 'trigger', path: ['a', 'b'] });
    expect(parseTemplate('steps.fetch.output')).toEqual({ source: 'step', stepName: 'fetch', path: [] });
    expect(parseTemplate('steps.fetch')).toBeNull();
    expect(parseTemplate('steps.fetch.outputs.x')).toBeNull();
    expect(parseTemplate('a..b')).toBeNull();
  });

  it('reads paths', () => {
    expect(readPath({ a: [{ b: 1 }] }, ['a', '0', 'b'])).toBe(1);
    expect(readPath({ a: [1] }, ['a', 'x'])).toBeNull();
    expect(readPath(undefined, [])).toBeNull();
  });

  it('lists the references a value holds', () => {
    expect(templateRefs({ a: 'x {{steps.one.output.y}} {{trigger.z}}', b: ['{{steps.two.output}}', '{{nope}}'] })).toEqual([
      { source: 'step', stepName: 'one', path: ['y'] },
      { source: 'trigger', path: ['z'] },
      { source: 'step', stepName: 'two', path: [] },
    ]);
  });
});
