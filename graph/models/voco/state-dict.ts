import { VocoGraph } from './model';

export interface StateDictEntry {
  readonly name: string;
  readonly shape: readonly number[];
  readonly dtype: 'float32' | 'int64';
  readonly kind: 'parameter' | 'state' | 'buffer';
}

/**
 * Every key of upstream `VoCoHead.state_dict()` in upstream order: parameters and state of the graph plus the
 * `relative_position_index` buffers. The order differs from creation order only in SwinViT, where upstream
 * registers `layers1..4` before the v2 conv blocks `layers1c..4c`, and PatchMerging's `reduction` before its `norm`.
 */
export function stateDictEntries(vg: Pick<VocoGraph, 'graph' | 'buffers'>): StateDictEntry[] {
  const entries: StateDictEntry[] = vg.graph.parameters.map((p) => ({
    name: p.tensor.name,
    shape: p.tensor.shape,
    dtype: 'float32',
    kind: p.trainable ? 'parameter' : 'state',
  }));
  for (const b of vg.buffers) {
    const table = `${b.name.slice(0, -'relative_position_index'.length)}relative_position_bias_table`;
    const at = entries.findIndex((e) => e.name === table);
    entries.splice(at + 1, 0, { name: b.name, shape: b.shape, dtype: 'int64', kind: 'buffer' });
  }
  // Upstream PatchMerging registers `reduction` before `norm`.
  for (const r of entries.filter((e) => e.name.endsWith('.downsample.reduction.weight'))) {
    entries.splice(entries.indexOf(r), 1);
    entries.splice(entries.findIndex((e) => e.name === r.name.replace('reduction.weight', 'norm.weight')), 0, r);
  }
  const rank = (name: string): number => (/^backbone\.swinViT\.layers\dc\./.test(name) ? 1 : 0);
  const swinEnd = entries.findIndex((e) => !e.name.startsWith('backbone.swinViT.'));
  const swin = entries.slice(0, swinEnd);
  const ordered = [...swin.filter((e) => rank(e.name) === 0), ...swin.filter((e) => rank(e.name) === 1)];
  return [...ordered, ...entries.slice(swinEnd)];
}
