// npm postinstall: runs onnxruntime-node's own installer, which downloads the CUDA 12 provider, only when asked
// for with `ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci`. package.json's `allowScripts` keeps npm from running that
// installer on every install (a plain `npm ci` needs no network: the CPU and WebGPU builds ship in the package).
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const flag = process.env.ONNXRUNTIME_NODE_INSTALL || process.env.ONNXRUNTIME_NODE_INSTALL_CUDA;
if (!flag || flag === 'skip') process.exit(0);
const installer = require.resolve('onnxruntime-node/package.json').replace(/package\.json$/, path.join('script', 'install.js'));
const run = spawnSync(process.execPath, [installer], { stdio: 'inherit', cwd: path.dirname(path.dirname(installer)) });
process.exit(run.status ?? 1);
