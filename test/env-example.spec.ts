import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

/** Every setting an app reads must be listed, with its default, in `.env.example`. */
describe('.env.example', () => {
  const root = path.resolve(__dirname, '..');
  const walk = (dir: string): string[] =>
    readdirSync(dir).flatMap((f) => {
      const p = path.join(dir, f);
      if (statSync(p).isDirectory()) return f === 'node_modules' ? [] : walk(p);
      return p.endsWith('.ts') && !p.endsWith('.spec.ts') ? [p] : [];
    });

  it('lists every environment variable that a config schema or the code reads', () => {
    const listed = new Set(
      readFileSync(path.join(root, '.env.example'), 'utf8')
        .split('\n')
        .map((l) => /^#?\s*([A-Z][A-Z0-9_]+)=/.exec(l)?.[1])
        .filter((v): v is string => Boolean(v)),
    );
    const read = new Set<string>();
    for (const file of [...walk(path.join(root, 'apps')), ...walk(path.join(root, 'libs'))]) {
      if (file.includes(`${path.sep}testing${path.sep}`)) continue;
      const src = readFileSync(file, 'utf8');
      // Keys of zod config objects (`FOO_BAR: z.…` / `env.…`) and direct reads of process.env.
      for (const m of src.matchAll(/^\s+([A-Z][A-Z0-9_]{2,}): [a-z]/gm)) read.add(m[1]);
      for (const m of src.matchAll(/process\.env\.([A-Z][A-Z0-9_]+)/g)) read.add(m[1]);
    }
    expect(read.size).toBeGreaterThan(10);
    expect([...read].filter((v) => !listed.has(v)).sort()).toEqual([]);
  });
});
