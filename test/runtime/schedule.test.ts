import { learningRate } from '../../runtime/loop/schedule';

describe('learning-rate schedules (upstream LambdaLR semantics: step 0 uses factor(0))', () => {
  const base = { baseLr: 1e-4, warmupSteps: 10, totalSteps: 110 };
  test('warmup-cosine: linear warm-up, half cosine to zero', () => {
    const s = { ...base, kind: 'warmup-cosine' as const };
    expect(learningRate(s, 0)).toBe(0);
    expect(learningRate(s, 5)).toBeCloseTo(0.5e-4, 12);
    expect(learningRate(s, 10)).toBeCloseTo(1e-4, 12);
    expect(learningRate(s, 60)).toBeCloseTo(0.5e-4, 12);
    expect(learningRate(s, 110)).toBeCloseTo(0, 12);
    expect(learningRate(s, 200)).toBe(0);
  });
  test('poly and constant', () => {
    expect(learningRate({ ...base, kind: 'poly' }, 55)).toBeCloseTo(1e-4 * 0.5 ** 0.9, 12);
    expect(learningRate({ ...base, kind: 'constant' }, 77)).toBe(1e-4);
  });
});
