// Lint rules, including the module boundaries of docs/architecture.md: a broken boundary fails `npm test`.
import tseslint from 'typescript-eslint';

const netModules = ['node:net', 'node:tls', 'node:http', 'node:https', 'ws', 'net', 'tls', 'http', 'https'];
const netBan = netModules.map((name) => ({ name, message: 'Only src/transport/ (and the composition roots) may import network modules.' }));

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', 'build/**', '.scratch/**', '.bench-tmp/**'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts', '**/*.tsx'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // Everywhere in src/: only src/transport/ opens sockets (the folder blocks below refine this).
    files: ['src/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { paths: netBan }] },
  },
  {
    // The codec imports nothing but node:buffer and its own files.
    files: ['src/protocol/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [{ regex: '^(?!node:buffer$|\\./)', message: 'src/protocol/ may import only node:buffer and its own files.' }],
      }],
    },
  },
  {
    files: ['src/protocol/packets/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [{ regex: '^(?!node:buffer$|\\./|\\.\\./[^./][^/]*$)', message: 'src/protocol/ may import only node:buffer and its own files.' }],
      }],
    },
  },
  {
    // Pure state machines and data structures: no I/O, no broker.
    files: ['src/session/**/*.ts', 'src/router/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: netBan,
        patterns: [{ regex: '^\\.\\./(broker|transport|persistence|cluster|server|bin|config|admin)', message: 'session/ and router/ are pure: no broker, I/O or storage imports.' }],
      }],
    },
  },
  {
    files: ['src/broker/**/*.ts', 'src/config/**/*.ts', 'src/observability/**/*.ts', 'src/persistence/**/*.ts', 'src/cluster/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: netBan,
        patterns: [{ regex: '^\\.\\./+(\\.\\./)*transport/(?!types\\.js$)', message: 'The broker never sees sockets: transports hand it a Duplex (and the types of transport/types.ts).' }],
      }],
    },
  },
  {
    // The client dials through transport/dial.ts (a URL in, a Duplex out) and sees no socket itself.
    files: ['src/client/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: netBan,
        patterns: [{ regex: '^\\.\\./+(\\.\\./)*transport/(?!(types|dial|dial-browser)\\.js$)', message: 'The client takes a Duplex; it may import only the dialers (transport/dial.ts, dial-browser.ts) and transport/types.ts.' }],
      }],
    },
  },
  {
    files: ['src/broker/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: netBan,
        patterns: [{ regex: '^\\.\\./+(\\.\\./)*(transport/(?!types\\.js$)|admin|server|bin|config/load)', message: 'broker/ gets transports, config and stores injected (it may import the types of transport/types.ts).' }],
      }],
    },
  },
  {
    // The HTTP API uses the broker's public API only (BrokerCore / Broker), never its internals.
    files: ['src/ops/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: netBan,
        patterns: [{ regex: '^(\\.\\./)+(broker/(?!(broker|index)\\.js$)|transport/(?!types\\.js$)|server|bin)', message: 'src/ops/ uses the public broker API (broker/broker.ts, petrel.ts), not broker internals or transports.' }],
      }],
    },
  },
  {
    // The dashboard runs in a browser: no Node modules, and Petrel only through petrel/client (the browser build).
    files: ['dashboard/**/*.ts', 'dashboard/**/*.tsx'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          { regex: '^node:', message: 'The dashboard runs in a browser.' },
          { regex: '^(\\.\\./)+(src|dist|build)/', message: 'The dashboard reaches Petrel through the HTTP API and petrel/client only.' },
        ],
      }],
    },
  },
  {
    files: ['src/transport/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [{ regex: '^\\.\\./(broker|client)', message: 'transport/ only hands back Duplex streams.' }],
      }],
    },
  },
);
