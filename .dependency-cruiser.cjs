/**
 * The import rules the folder layout stands for (doc/architecture.md). Run by `npm run lint`.
 * @type {import('dependency-cruiser').IConfiguration}
 */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'An import circle in src/ ties modules that should stand in layers.',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'tunnel-not-into-proxy',
      severity: 'error',
      comment: 'The tunnel carries streams and knows nothing of HTTP proxying.',
      from: { path: '^src/tunnel/' },
      to: { path: '^src/proxy/' },
    },
    {
      name: 'mesh-not-into-proxy',
      severity: 'error',
      comment: 'The mesh routes and relays streams frame by frame; it never parses HTTP.',
      from: { path: '^src/mesh/' },
      to: { path: '^src/proxy/' },
    },
    {
      name: 'far-not-into-near',
      severity: 'error',
      comment: 'The far end does its job without the near end (types may be shared).',
      from: { path: '^src/proxy/far/' },
      to: { path: '^src/proxy/near/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'near-not-into-far',
      severity: 'error',
      comment: 'The near end reaches the far end only through the tunnel (types may be shared).',
      from: { path: '^src/proxy/near/' },
      to: { path: '^src/proxy/far/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'src-not-into-tests',
      severity: 'error',
      comment: 'Shipped code must not depend on tests or benchmarks.',
      from: { path: '^src/' },
      to: { path: '^(test|bench)/' },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment: 'An import that does not resolve would leave the rules above blind to it.',
      from: { path: '^src/' },
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Type-only imports are seen too, and marked 'type-only' for the near/far rules.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      extensions: ['.ts', '.js'],
      exportsFields: ['exports'],
      conditionNames: ['import', 'node', 'default'],
    },
  },
};
