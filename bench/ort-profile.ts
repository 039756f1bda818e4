/**
 * Summarises ONNX Runtime profiles (sessions opened with VOCO_ORT_PROFILE=PREFIX, see runtime/session/providers.ts):
 * per file, the runs' wall time, the kernel time by operator type and the `top` costliest nodes, so that a step's
 * time can be traced to what the graph does.
 * Run: npx tsx bench/ort-profile.ts [--top N] FILE...
 */
import * as fs from 'fs';

interface ProfileEvent {
  readonly cat: string;
  readonly name: string;
  readonly dur: number;
  readonly args?: { readonly op_name?: string };
}

const ms = (us: number): string => (us / 1000).toFixed(1);

/** The markdown summary of one profile file. */
export function summarise(file: string, top: number): string[] {
  const events = JSON.parse(fs.readFileSync(file, 'utf8')) as ProfileEvent[];
  const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run');
  const kernels = events.filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time'));
  const byOp = new Map<string, { us: number; count: number }>();
  const byNode = new Map<string, number>();
  for (const k of kernels) {
    const op = k.args?.op_name ?? '?';
    const o = byOp.get(op) ?? { us: 0, count: 0 };
    o.us += k.dur;
    o.count++;
    byOp.set(op, o);
    const node = `${k.name.slice(0, -'_kernel_time'.length)} (${op})`;
    byNode.set(node, (byNode.get(node) ?? 0) + k.dur);
  }
  const kernelUs = kernels.reduce((s, k) => s + k.dur, 0);
  const runUs = runs.reduce((s, r) => s + r.dur, 0);
  const lines = [`## ${file}: ${runs.length} runs, ${ms(runUs)} ms in runs, ${ms(kernelUs)} ms in kernels`, '', '| operator | ms | % of kernels | nodes run |', '|---|---|---|---|'];
  for (const [op, o] of [...byOp].sort((a, b) => b[1].us - a[1].us)) {
    lines.push(`| ${op} | ${ms(o.us)} | ${((100 * o.us) / kernelUs).toFixed(1)} | ${o.count} |`);
  }
  lines.push('', `| node (top ${top}) | ms |`, '|---|---|');
  for (const [node, us] of [...byNode].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`| ${node} | ${ms(us)} |`);
  return lines;
}

function main(): void {
  const args = process.argv.slice(2);
  const at = args.indexOf('--top');
  const top = at >= 0 ? Number(args.splice(at, 2)[1]) : 15;
  if (args.length === 0) {
    process.stderr.write('usage: ort-profile.ts [--top N] FILE...\n');
    process.exitCode = 2;
    return;
  }
  process.stdout.write(args.flatMap((f) => [...summarise(f, top), '']).join('\n'));
}

if (require.main === module) main();
