import nx from '@nx/eslint-plugin';
import tseslint from 'typescript-eslint';

const infraPackages = ['kafkajs', '@mikro-orm/*', '@nestjs/*', 'pg', 'express', 'pino', 'nestjs-pino', 'prom-client'];

export default tseslint.config(
  { ignores: ['**/dist', '**/node_modules', '**/.cache', '**/.nx', 'docs/**', 'infra/**/*.mjs'] },
  ...nx.configs['flat/base'],
  ...nx.configs['flat/typescript'],
  {
    files: ['**/*.ts'],
    rules: {
      // Module boundaries, enforced: every project is tagged and only these edges are allowed.
      '@nx/enforce-module-boundaries': [
        'error',
        {
          enforceBuildableLibDependency: false,
          allow: [],
          depConstraints: [
            // By layer.
            { sourceTag: 'type:contracts', onlyDependOnLibsWithTags: ['type:contracts'], bannedExternalImports: infraPackages },
            {
              sourceTag: 'type:domain',
              onlyDependOnLibsWithTags: ['type:contracts', 'type:domain'],
              bannedExternalImports: infraPackages,
            },
            { sourceTag: 'type:platform', onlyDependOnLibsWithTags: ['type:contracts', 'type:platform'] },
            {
              sourceTag: 'type:infra',
              onlyDependOnLibsWithTags: ['type:contracts', 'type:platform', 'type:infra', 'type:testing'],
            },
            {
              sourceTag: 'type:data-access',
              onlyDependOnLibsWithTags: [
                'type:contracts',
                'type:domain',
                'type:platform',
                'type:infra',
                'type:data-access',
                'type:testing',
              ],
            },
            {
              sourceTag: 'type:testing',
              onlyDependOnLibsWithTags: ['type:contracts', 'type:platform', 'type:infra', 'type:testing'],
            },
            {
              sourceTag: 'type:app',
              onlyDependOnLibsWithTags: [
                'type:contracts',
                'type:domain',
                'type:platform',
                'type:infra',
                'type:data-access',
                'type:testing',
              ],
            },
            // By context: one context never reaches into another's internals.
            { sourceTag: 'scope:shared', onlyDependOnLibsWithTags: ['scope:shared'] },
            { sourceTag: 'scope:runs', onlyDependOnLibsWithTags: ['scope:shared', 'scope:runs'] },
            { sourceTag: 'scope:command', onlyDependOnLibsWithTags: ['scope:shared', 'scope:runs', 'scope:command'] },
            { sourceTag: 'scope:projector', onlyDependOnLibsWithTags: ['scope:shared', 'scope:projector'] },
            { sourceTag: 'scope:gateway', onlyDependOnLibsWithTags: ['scope:shared', 'scope:gateway'] },
            { sourceTag: 'scope:retention', onlyDependOnLibsWithTags: ['scope:shared', 'scope:retention'] },
            { sourceTag: 'scope:worker', onlyDependOnLibsWithTags: ['scope:shared', 'scope:worker'] },
            { sourceTag: 'scope:ops', onlyDependOnLibsWithTags: ['scope:shared', 'scope:ops'] },
          ],
        },
      ],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'error',
    },
  },
  {
    files: ['**/*.spec.ts'],
    rules: { '@typescript-eslint/no-non-null-assertion': 'off' },
  },
);
