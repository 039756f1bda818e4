import * as fs from 'fs';
import * as path from 'path';
import { maskClasses, relativePositionIndex, shiftRegionIds, topLeftBlock, windowGeometry } from '../../graph/models/swin-windows';
import { readSafetensors } from '../../io/weights/safetensors';
import { REFERENCE } from '../helpers/reference';

const WEIGHTS = path.join(REFERENCE, 'model/tiny12_r64_b1/weights.safetensors');

describe('Swin window geometry', () => {
  test('windows shrink to the resolution (shift 0) and pad to multiples otherwise', () => {
    expect(windowGeometry([32, 32, 32], 7, 3)).toMatchObject({ window: [7, 7, 7], shift: [3, 3, 3], padded: [35, 35, 35], windows: 125, tokens: 343 });
    expect(windowGeometry([16, 16, 16], 7, 3)).toMatchObject({ padded: [21, 21, 21], windows: 27 });
    expect(windowGeometry([8, 8, 8], 7, 3)).toMatchObject({ padded: [14, 14, 14], windows: 8 });
    expect(windowGeometry([4, 4, 4], 7, 3)).toMatchObject({ window: [4, 4, 4], shift: [0, 0, 0], padded: [4, 4, 4], windows: 1, tokens: 64 });
    expect(windowGeometry([7, 8, 7], 7, 3)).toMatchObject({ window: [7, 7, 7], shift: [0, 3, 0], padded: [7, 14, 7] });
  });

  (fs.existsSync(WEIGHTS) ? test : test.skip)('the relative-position index equals the upstream buffer', () => {
    const buffer = readSafetensors(WEIGHTS, ['backbone.swinViT.layers1.0.blocks.0.attn.relative_position_index']).values().next().value!;
    expect(buffer.dtype).toBe('int64');
    expect(buffer.shape).toEqual([343, 343]);
    expect(relativePositionIndex(7)).toEqual(buffer.data);
  });

  test('the sliced index is the top-left block', () => {
    const full = relativePositionIndex(3);
    const block = topLeftBlock(full, 27, 8);
    expect(block).toHaveLength(64);
    expect(block[0]).toBe(full[0]);
    expect(block[8 + 3]).toBe(full[27 + 3]);
    // Offsets (0,0,0) sit in the middle of the (2w-1)^3 table; the diagonal always points there.
    expect([...block].filter((_, i) => i % 9 === 0).every((v) => v === BigInt(2 * 25 + 2 * 5 + 2))).toBe(true);
  });

  test('shifted-window regions: 27 labels on the padded grid; windows away from the far edges hold one region', () => {
    const g = windowGeometry([14, 14, 14], 7, 3);
    const ids = shiftRegionIds(g);
    expect(ids).toHaveLength(8 * 343);
    expect(new Set(ids.subarray(0, 343)).size).toBe(1);
    // The last window covers the wrapped-around strips: 2 x 2 x 2 regions.
    expect(new Set(ids.subarray(7 * 343)).size).toBe(8);
    expect(new Set(ids).size).toBe(27);
  });

  test('mask classes: boxes of windows with one mask each, covering every window once', () => {
    const g = windowGeometry([32, 32, 32], 7, 3);
    const classes = maskClasses(g);
    const sizes = classes.map((c) => c.ends.reduce((a, e, i) => a * (e - c.starts[i]), 1));
    expect(sizes).toEqual([64, 16, 16, 4, 16, 4, 4, 1]);
    expect(classes.map((c) => c.open)).toEqual([true, false, false, false, false, false, false, false]);
    // The corner window straddles a boundary on every axis: 2 x 2 x 2 regions.
    expect(new Set(classes[7].ids).size).toBe(8);
    // Each class's ids are those of every window in its box (up to relabelling: the mask only compares them).
    const ids = shiftRegionIds(g);
    const last = 124 * 343;
    expect(Array.from(ids.subarray(last, last + 343))).toEqual(Array.from(classes[7].ids));
    // An axis without a shift is not split: [7, 8, 7] shifts along h only.
    const one = maskClasses(windowGeometry([7, 8, 7], 7, 3));
    expect(one.map((c) => [c.starts, c.ends])).toEqual([
      [[0, 0, 0], [1, 1, 1]],
      [[0, 1, 0], [1, 2, 1]],
    ]);
  });
});
