// Type-aware lint for src/, test/ and bench/ (the files tsconfig.json includes).
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**'] },
  {
    files: ['src/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts'],
    extends: [...tseslint.configs.strictTypeChecked, ...tseslint.configs.stylisticTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // Numbers and booleans in messages and log lines read as they print.
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      // node:test's test()/describe() return promises the runner itself awaits.
      '@typescript-eslint/no-floating-promises': ['error', {
        allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite', 'before', 'after', 'beforeEach', 'afterEach'] }],
      }],
      // `(x) => resolve(x)` and `() => socket.destroy()` are how callbacks are written here.
      '@typescript-eslint/no-confusing-void-expression': ['error', { ignoreArrowShorthand: true }],
      // `() => {}` is the deliberate "this rejection or event is expected and dropped" handler.
      '@typescript-eslint/no-empty-function': ['error', { allow: ['arrowFunctions'] }],
      // `value || fallback` on strings is meant: an empty header or env value counts as unset.
      '@typescript-eslint/prefer-nullish-coalescing': ['error', { ignorePrimitives: { string: true } }],
      // async marks functions that satisfy a Promise-returning interface and turn a throw into a rejection.
      '@typescript-eslint/require-await': 'off',
      // `let x;` assigned once after a closure that reads it is declared: it cannot be const.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      // Same convention as tsc's noUnused*: a leading _ or a rest sibling marks a value left out on purpose.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true }],
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      // A test asserts on state it has just set up: a wrong `!` fails the test, which is the point.
      '@typescript-eslint/no-non-null-assertion': 'off',
      // Tests read JSON.parse results and peer answers loosely, then assert on them.
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
      // Defensive checks after assertions, and re-reads of state awaited in between, read as intended.
      '@typescript-eslint/no-unnecessary-condition': 'off',
      // Tests edit config objects by computed key to build the case they need.
      '@typescript-eslint/no-dynamic-delete': 'off',
      // Tests hand fake sockets and method references to the code under test on purpose.
      '@typescript-eslint/no-unsafe-class-instance-assignment': 'off',
      '@typescript-eslint/unbound-method': 'off',
    },
  },
);
