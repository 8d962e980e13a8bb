import { execFileSync, execSync } from 'node:child_process';
import path from 'node:path';

/**
 * The module-boundary rules must really bite: each case is an import that the architecture forbids,
 * linted as if it stood in the named file. A rule that silently skips (no project graph, no tags)
 * would let these pass, so this test fails then too.
 */
describe('module boundaries are enforced by lint', () => {
  const root = path.resolve(__dirname, '..');
  beforeAll(() => {
    // The Nx rule reads the cached project graph; computing it is what `npm run lint` does first.
    execSync('npx nx show projects', { cwd: root, stdio: 'ignore', env: { ...process.env, NX_DAEMON: 'false' } });
  }, 120000);

  // ESLint runs as its own process (its flat config is ESM, which jest's module system does not load).
  const lint = async (filePath: string, code: string): Promise<string[]> => {
    let out: string;
    try {
      out = execFileSync(
        path.join(root, 'node_modules/.bin/eslint'),
        ['--stdin', '--stdin-filename', path.join(root, filePath), '--format', 'json'],
        { cwd: root, input: code, encoding: 'utf8' },
      );
    } catch (e) {
      out = (e as { stdout: string }).stdout; // exit code 1 means lint errors: the JSON is on stdout
    }
    const [result] = JSON.parse(out) as { messages: { ruleId: string; message: string }[] }[];
    return result.messages.filter((m) => m.ruleId === '@nx/enforce-module-boundaries').map((m) => m.message);
  };

  it.each([
    ['the domain importing kafkajs', 'libs/run-domain/src/x.ts', "import { Kafka } from 'kafkajs';\nexport const k = Kafka;"],
    ['the domain importing MikroORM', 'libs/run-domain/src/x.ts', "import { MikroORM } from '@mikro-orm/core';\nexport const m = MikroORM;"],
    ['contracts importing NestJS', 'libs/contracts/src/x.ts', "import { Module } from '@nestjs/common';\nexport const m = Module;"],
    ['the gateway importing the write model', 'apps/api-gateway/src/x.ts', "import { appendToRun } from '@flowruns/write-model';\nexport const a = appendToRun;"],
    ['the projector importing the gateway views', 'apps/projector/src/x.ts', "import * as v from '@flowruns/run-views';\nexport const a = v;"],
    ['a shared lib importing a context', 'libs/platform/src/x.ts', "import * as d from '@flowruns/run-domain';\nexport const a = d;"],
  ])('forbids %s', async (_name, file, code) => {
    expect(await lint(file, code)).not.toEqual([]);
  });

  it('allows an app to use its own context and the shared libraries', async () => {
    const code = "import { RunCommands } from '@flowruns/write-model';\nimport { loadConfig } from '@flowruns/platform';\nexport const x = [RunCommands, loadConfig];";
    expect(await lint('apps/command-service/src/x.ts', code)).toEqual([]);
  });
});
