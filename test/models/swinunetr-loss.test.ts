import { Graph } from '../../graph/core/graph';
import { diceCeLoss } from '../../graph/models/swinunetr/loss';
import { Rng } from '../../common/rng';
import { gradcheck } from '../helpers/gradcheck';
import { cpuSession, runSession } from '../helpers/ort';

// [N, C, X, Y, Z] = [2, 3, 2, 3, 2]: item 1 has no voxel of class 2, so its Dice term is the empty-class one.
const N = 2;
const C = 3;
const VOXELS = 12;
const SHAPE = [N, C, 2, 3, 2];
const LABEL_SHAPE = [N, 1, 2, 3, 2];
const rng = new Rng(7);
const LOGITS = Array.from({ length: N * C * VOXELS }, () => rng.normal());
const LABELS = [0, 1, 2, 2, 1, 0, 0, 2, 1, 1, 0, 2, /* item 1 */ 1, 1, 0, 0, 1, 0, 1, 1, 0, 0, 0, 1];

/** MONAI's DiceCELoss(include_background=False, to_onehot_y=True, softmax=True), written out voxel by voxel. */
function monaiDiceCe(logits: readonly number[], labels: readonly number[]) {
  const at = (n: number, c: number, v: number) => logits[(n * C + c) * VOXELS + v];
  const perItemClass: number[] = [];
  let ce = 0;
  for (let n = 0; n < N; n++) {
    const p: number[][] = Array.from({ length: C }, () => []);
    for (let v = 0; v < VOXELS; v++) {
      const e = Array.from({ length: C }, (_, c) => Math.exp(at(n, c, v)));
      const total = e.reduce((a, b) => a + b, 0);
      e.forEach((x, c) => p[c].push(x / total));
      ce += Math.log(total) - at(n, labels[n * VOXELS + v], v);
    }
    for (let c = 1; c < C; c++) {
      let intersection = 0;
      let predicted = 0;
      let truth = 0;
      for (let v = 0; v < VOXELS; v++) {
        const y = labels[n * VOXELS + v] === c ? 1 : 0;
        intersection += p[c][v] * y;
        predicted += p[c][v];
        truth += y;
      }
      perItemClass.push(1 - (2 * intersection + 1e-5) / (predicted + truth + 1e-5));
    }
  }
  const dice = perItemClass.reduce((a, b) => a + b, 0) / perItemClass.length;
  ce /= N * VOXELS;
  return { dice, ce, total: dice + ce, perItemClass };
}

describe('DiceCE loss graph', () => {
  test('equals MONAI DiceCELoss semantics written out in float64 (softmax, background dropped, smooth 1e-5, CE over all channels)', async () => {
    const g = new Graph();
    const logits = g.input('logits', 'float64', SHAPE);
    const label = g.input('label', 'float64', LABEL_SHAPE);
    const parts = diceCeLoss(logits, label);
    const session = await cpuSession({
      name: 'dice_ce',
      inputs: [logits, label],
      outputs: [
        { name: 'total', tensor: parts.total },
        { name: 'dice', tensor: parts.dice },
        { name: 'ce', tensor: parts.ce },
        { name: 'per_item_class', tensor: parts.dicePerItemClass },
      ],
    });
    const out = await runSession(session, new Map([[logits, Float64Array.from(LOGITS)], [label, Float64Array.from(LABELS)]]));
    const want = monaiDiceCe(LOGITS, LABELS);
    expect(Array.from(out.per_item_class)).toHaveLength(4);
    Array.from(out.per_item_class).forEach((v, i) => expect(v).toBeCloseTo(want.perItemClass[i], 12));
    expect(out.dice[0]).toBeCloseTo(want.dice, 12);
    expect(out.ce[0]).toBeCloseTo(want.ce, 12);
    expect(out.total[0]).toBeCloseTo(want.total, 12);
    // The empty class of item 1 scores 1 - 1e-5 / (sum p + 1e-5): close to 1, not 0.
    expect(want.perItemClass[3]).toBeGreaterThan(0.99);
  });

  test.each([
    ['total', (p: ReturnType<typeof diceCeLoss>) => p.total],
    ['dice', (p: ReturnType<typeof diceCeLoss>) => p.dice],
    ['ce', (p: ReturnType<typeof diceCeLoss>) => p.ce],
    ['per item and class Dice', (p: ReturnType<typeof diceCeLoss>) => p.dicePerItemClass],
  ])('the gradient of %s with respect to the logits matches central differences in float64', async (_, pick) => {
    const result = await gradcheck(
      [{ shape: SHAPE, values: LOGITS }, { shape: LABEL_SHAPE, values: LABELS, constant: true }],
      (x, y) => pick(diceCeLoss(x, y)),
      { dtype: 'float64', samples: 40, rtol: 1e-5, atol: 1e-6 },
    );
    expect(result.checked).toBe(40);
    expect(result.worst).toBeLessThan(1e-5);
  });

  test('a label that does not fit the logits is refused when the graph is built', () => {
    const g = new Graph();
    const logits = g.input('logits', 'float32', SHAPE);
    expect(() => diceCeLoss(logits, g.input('label', 'float32', [N, 1, 2, 3, 3]))).toThrow(/diceCeLoss: logits .* label \[N, 1, \.\.\.spatial\]/);
    expect(() => diceCeLoss(g.input('one', 'float32', [N, 1, 2, 3, 2]), g.input('l', 'float32', LABEL_SHAPE))).toThrow(/C >= 2/);
  });
});
