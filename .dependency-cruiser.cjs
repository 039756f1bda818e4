/**
 * The layering of voco-onnx (docs/architecture.md), checked by `npm test` (test/layering.test.ts):
 * common <- io <- graph <- runtime <- cli, and data <- runtime; graph and data never import each other; nothing
 * below runtime opens ONNX Runtime; no import cycles.
 */
const below = (layer, above) => ({
  name: `${layer}-imports-upward`,
  comment: `${layer}/ sits below ${above.join(', ')}: move the shared code down, or the importing code up`,
  severity: 'error',
  from: { path: `^${layer}/` },
  to: { path: `^(${above.join('|')})/` },
});

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    below('common', ['io', 'graph', 'data', 'runtime', 'cli']),
    below('io', ['graph', 'data', 'runtime', 'cli']),
    below('graph', ['data', 'runtime', 'cli']),
    below('data', ['graph', 'runtime', 'cli']),
    below('runtime', ['cli']),
    {
      name: 'onnxruntime-below-runtime',
      comment: 'only runtime/ (and cli/) run models: graph/ builds them, io/ and data/ read files',
      severity: 'error',
      from: { path: '^(common|io|graph|data)/' },
      to: { path: 'node_modules/onnxruntime-' },
    },
    {
      name: 'no-circular',
      comment: 'an import cycle: split the shared part into a module both import',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist)/' },
  },
};
