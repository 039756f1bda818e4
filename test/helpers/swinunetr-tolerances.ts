/**
 * Tolerances of the SwinUNETR gradients against MONAI (../shared/reference/segmentation/tiny12_r64_b2_c4), shared
 * by every test that compares them (test/models/swinunetr-reference.test.ts, voco grad's CLI test); the argument is below.
 */
import { TensorMap } from '../../io/weights/tensor-map';
import { norm, overBound, relativeL2 } from './relative-error';

/**
 * Gradients of the deep part (SwinViT stages, encoder3/4/10, decoder5..3) that float32 does not pin to 1e-3, with
 * the bound each group meets. Measured against a float64 recomputation of this step with MONAI 1.3.2's own
 * SwinUNETR and DiceCELoss (scripts/swinunetr_float64_check.py; relative L2 on grad_head, the largest per group):
 *
 *   group (tensors)        reference - f64   ours - f64   bound   | full tensor: PyTorch f32 - f64   ours - f64
 *   swinViT.layers1 (31)       5.4e-3          2.3e-3      1e-2   |                 5.7e-3            1.9e-3
 *   swinViT.layers2 (31)       9.4e-3          3.6e-3      1.5e-2 |                 8.8e-3            2.6e-3
 *   swinViT.layers3 (31)       9.7e-3          6.6e-3      2e-2   |                 6.5e-3            2.5e-3
 *   swinViT.layers4 (31)       1.2e-2          4.1e-3      2e-2   |                 6.2e-3            3.0e-3
 *   encoder3 (2)               2.2e-3          1.5e-3      5e-3   |                 1.8e-3            1.3e-3
 *   encoder4 (2)               5.3e-3          2.7e-3      1e-2   |                 5.1e-3            2.1e-3
 *   encoder10 (2)              2.6e-3          1.6e-3      5e-3   |                 4.7e-3            2.0e-3
 *   decoder5 (4)               4.8e-3          2.7e-3      8e-3   |                 5.0e-3            2.0e-3
 *   decoder4 (4)               3.9e-3          2.1e-3      8e-3   |                 6.5e-3            2.1e-3
 *   decoder3 (4)               2.6e-3          1.8e-3      5e-3   |                 2.1e-3            1.7e-3
 *
 * The reference's own float32 gradients are this far from float64, and ours are closer to float64 than PyTorch's
 * float32 on the 142 deep tensors (ratio of the distances on full tensors: median 0.42, largest 0.82; on the heads:
 * median 0.42, largest 1.04), so the distance between the two float32 results is float32's, not a bug. Each bound
 * is the sum of the two measured distances (the triangle inequality) rounded up: it still fails on any real error,
 * which moves a gradient by O(1). PyTorch does not even reproduce its own float32 gradients: reruns on 1, 2 and 4
 * threads are up to 0.8e-3 .. 1.4e-3 from the file. The norms (grad_stats l2) hold to 1e-3 except in the SwinViT
 * stages, where the reference's norm is up to 5.2e-3 from float64 (ours 1.4e-3): bound 1e-2. The shallow path is
 * within 1e-3 but for one head: the reference's decoder2 transposed-conv head is itself 1.1e-3 from float64 and ours
 * 4.0e-4, so the two may lie 1.5e-3 apart: bound 2e-3. They did on an AMD EPYC (AVX2 kernels, 2026-12-04: 1.11e-3);
 * on an Intel Xeon (AVX-512) 9.8e-4.
 */
export const SHALLOW = /^(swinViT\.patch_embed\.|encoder1\.|encoder2\.|decoder1\.|decoder2\.|out\.)/;
export const DEEP_HEAD_BOUNDS: ReadonlyArray<readonly [RegExp, number]> = [
  [/^swinViT\.layers1/, 1e-2],
  [/^swinViT\.layers2/, 1.5e-2],
  [/^swinViT\.layers[34]/, 2e-2],
  [/^(encoder3|encoder10|decoder3)\./, 5e-3],
  [/^(decoder4|decoder5)\./, 8e-3],
  [/^encoder4\./, 1e-2],
];
const SHALLOW_EXCEPTION = /^decoder2\.transp_conv\./;
export const headBound = (name: string): number => {
  if (SHALLOW_EXCEPTION.test(name)) return 2e-3;
  if (SHALLOW.test(name)) return 1e-3;
  const group = DEEP_HEAD_BOUNDS.find(([pattern]) => pattern.test(name));
  if (!group) throw new Error(`no gradient bound for ${name}`);
  return group[1];
};
export const normBound = (name: string): number => (/^swinViT\.layers/.test(name) ? 1e-2 : 1e-3);

/**
 * The gradients (by MONAI name) whose norm or head is further from the reference than normBound and headBound allow: `[]`
 * for both when all agree. `expected` holds `grad_head.<name>`, `gradStats` the case's `grad_stats`.
 */
export function gradientsOverBound(
  names: readonly string[],
  gradient: (name: string) => Float32Array,
  expected: TensorMap,
  gradStats: Readonly<Record<string, { l2: number }>>,
): { norm: string[]; head: string[] } {
  const normError = (n: string) => Math.abs(norm(gradient(n)) - gradStats[n].l2) / gradStats[n].l2;
  const headError = (n: string) => {
    const head = expected.get(`grad_head.${n}`)!.data as Float32Array;
    // A head that is all zeros (table rows no window of the last stage reaches) is measured on the gradient's scale.
    return norm(head) > 0 ? relativeL2(gradient(n), head) : norm(gradient(n).subarray(0, head.length)) / gradStats[n].l2;
  };
  return { norm: overBound(names, normError, normBound), head: overBound(names, headError, headBound) };
}
