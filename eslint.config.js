import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      '**/dist/**',
      '**/node_modules/**',
      'packages/*/bin/**',
      'packages/controller/src/db/generated/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      'no-restricted-exports': ['error', { restrictDefaultExports: { direct: true } }],
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    // Benchmarks are plain Node scripts on the built dist/.
    files: ['bench/**/*.mjs'],
    languageOptions: {
      globals: { console: 'readonly', process: 'readonly', performance: 'readonly' },
    },
  },
  {
    files: ['**/*.config.ts', 'eslint.config.js'],
    rules: { 'no-restricted-exports': 'off' },
  },
);
