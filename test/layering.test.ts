/**
 * The layering check (.dependency-cruiser.cjs, docs/architecture.md) on this tree, and on copies with a planted
 * upward import and a planted cycle, which it must refuse.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..');
const LAYERS = ['common', 'io', 'graph', 'data', 'runtime', 'cli'];
const DEPCRUISE = path.join(ROOT, 'node_modules/dependency-cruiser/bin/dependency-cruise.mjs');

function cruise(root: string): { status: number | null; output: string } {
  const run = spawnSync(process.execPath, [DEPCRUISE, '--config', '.dependency-cruiser.cjs', '--output-type', 'err', ...LAYERS], { cwd: root, encoding: 'utf8' });
  return { status: run.status, output: run.stdout + run.stderr };
}

/** A copy of the layers and the check's configuration, sharing this checkout's node_modules. */
function copyOfTree(): string {
  const copy = fs.mkdtempSync(path.join(os.tmpdir(), 'voco-layering-'));
  for (const entry of [...LAYERS, '.dependency-cruiser.cjs', 'tsconfig.json', 'package.json']) fs.cpSync(path.join(ROOT, entry), path.join(copy, entry), { recursive: true });
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(copy, 'node_modules'));
  return copy;
}

const copies: string[] = [];
afterAll(() => copies.forEach((c) => fs.rmSync(c, { recursive: true, force: true })));

test('no upward import, no onnxruntime-node below runtime/, no cycle', () => {
  const { status, output } = cruise(ROOT);
  expect(output).toContain('no dependency violations found');
  expect(status).toBe(0);
});

test('an upward import (graph/ importing runtime/) fails the check, naming the rule and the file', () => {
  const copy = copyOfTree();
  copies.push(copy);
  fs.writeFileSync(path.join(copy, 'graph/planted.ts'), "import { Trainer } from '../runtime/session/trainer';\nexport type Planted = Trainer;\n");
  const { status, output } = cruise(copy);
  expect(status).not.toBe(0);
  expect(output).toMatch(/error graph-imports-upward: graph\/planted\.ts → runtime\/session\/trainer\.ts/);
});

test('onnxruntime-node imported from graph/ fails the check', () => {
  const copy = copyOfTree();
  copies.push(copy);
  fs.writeFileSync(path.join(copy, 'graph/planted.ts'), "import * as ort from 'onnxruntime-node';\nexport const planted = ort.Tensor;\n");
  const { status, output } = cruise(copy);
  expect(status).not.toBe(0);
  expect(output).toMatch(/error onnxruntime-below-runtime: graph\/planted\.ts → /);
});

test('a new import cycle fails the check', () => {
  const copy = copyOfTree();
  copies.push(copy);
  fs.writeFileSync(path.join(copy, 'graph/ops/planted.ts'), "import { mul } from './elementwise';\nexport const planted = mul;\n");
  fs.appendFileSync(path.join(copy, 'graph/ops/elementwise.ts'), "\nexport { planted } from './planted';\n");
  const { status, output } = cruise(copy);
  expect(status).not.toBe(0);
  expect(output).toMatch(/error no-circular: graph\/ops\/(planted|elementwise)\.ts/);
});
