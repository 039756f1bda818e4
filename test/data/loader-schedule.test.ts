import { EpochSchedule, mixSeed } from '../../data/loader/schedule';

describe('EpochSchedule', () => {
  const repeats = [1, 3, 0, 2];

  it('shuffles each epoch into a permutation that holds every source as often as its repeat factor', () => {
    const schedule = new EpochSchedule(repeats, 42);
    expect(schedule.epochLength).toBe(6);
    const orders = [0, 1, 2].map((e) => Array.from(schedule.order(e)));
    for (const order of orders) expect([...order].sort()).toEqual([0, 1, 1, 1, 3, 3]);
    expect(new Set(orders.map((o) => o.join())).size).toBeGreaterThan(1);
    expect(Array.from(new EpochSchedule(repeats, 42).order(1))).toEqual(orders[1]);
    expect(Array.from(new EpochSchedule(repeats, 43).order(1))).not.toEqual(orders[1]);
  });

  it('moves a cursor across epoch boundaries and finds the source at any offset', () => {
    const schedule = new EpochSchedule(repeats, 7);
    let cursor = { step: 0, epoch: 0, index: 0 };
    const seen: number[] = [];
    for (let step = 0; step < 4; step++) {
      for (let k = 0; k < 4; k++) seen.push(schedule.sourceAt(cursor, k));
      cursor = schedule.advance(cursor, 4);
    }
    expect(cursor).toEqual({ step: 4, epoch: 2, index: 4 });
    expect(seen).toEqual([...schedule.order(0), ...schedule.order(1), ...schedule.order(2).slice(0, 4)]);
  });

  it('rejects a dataset with nothing to draw and bad repeat factors', () => {
    expect(() => new EpochSchedule([0, 0], 1)).toThrow(/no sources/);
    expect(() => new EpochSchedule([1, 1.5], 1)).toThrow(/source 1/);
  });
});

it('mixSeed depends on every part and their order', () => {
  const values = new Set([mixSeed(1, 2), mixSeed(2, 1), mixSeed(1, 3), mixSeed(1, 2, 0), mixSeed(1, 2 + 2 ** 32)]);
  expect(values.size).toBe(5);
  expect(mixSeed(1, 2)).toBe(mixSeed(1, 2));
});
