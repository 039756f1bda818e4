import { ArmRun, dicePlot, meanAndSpread, replaceSection, resultsTable, SECTION_BEGIN, SECTION_END } from '../../bench/downstream/report';

// Two seeds, two sizes; finals and bests chosen so that means, spreads and paired gains are easy to work by hand.
const curve = (...points: [number, number][]) => points;
const RUNS: ArmRun[] = [
  { size: 2, init: 'scratch', seed: 0, curve: curve([0, 0.05], [10, 0.25], [20, 0.2]) },
  { size: 2, init: 'scratch', seed: 1, curve: curve([0, 0.05], [10, 0.1], [20, 0.3]) },
  { size: 2, init: 'VoCo', seed: 0, curve: curve([0, 0.05], [10, 0.4], [20, 0.3]) },
  { size: 2, init: 'VoCo', seed: 1, curve: curve([0, 0.05], [10, 0.2], [20, 0.5]) },
  { size: 4, init: 'scratch', seed: 0, curve: curve([0, 0.05], [10, 0.3], [20, 0.4]) },
  { size: 4, init: 'scratch', seed: 1, curve: curve([0, 0.05], [10, 0.3], [20, 0.4]) },
  { size: 4, init: 'VoCo', seed: 0, curve: curve([0, 0.05], [10, 0.3], [20, 0.3]) },
  { size: 4, init: 'VoCo', seed: 1, curve: curve([0, 0.05], [10, 0.3], [20, 0.3]) },
];

describe('downstream report', () => {
  test('mean and sample standard deviation; none for one value', () => {
    expect(meanAndSpread([0.2, 0.3]).mean).toBeCloseTo(0.25, 12);
    expect(meanAndSpread([0.2, 0.3]).sd).toBeCloseTo(Math.SQRT1_2 / 10, 12);
    expect(meanAndSpread([0.4])).toEqual({ mean: 0.4 });
  });

  test('rows per size: scratch, VoCo and the gain paired by seed, final and best with their steps', () => {
    const lines = resultsTable(RUNS, [2, 4], [0, 1]).split('\n');
    expect(lines[0]).toBe('| training volumes | initialisation | final Dice by seed (0, 1) | final, mean ± sd | best Dice (step) by seed (0, 1) | best, mean ± sd |');
    expect(lines.slice(2)).toEqual([
      '| 2 | scratch | 0.200, 0.300 | 0.250 ± 0.071 | 0.250 (10), 0.300 (20) | 0.275 ± 0.035 |',
      '| 2 | VoCo | 0.300, 0.500 | 0.400 ± 0.141 | 0.400 (10), 0.500 (20) | 0.450 ± 0.071 |',
      '| 2 | **gain VoCo − scratch** | +0.100, +0.200 | **+0.150 ± 0.071** | +0.150, +0.200 | **+0.175 ± 0.035** |',
      '| 4 | scratch | 0.400, 0.400 | 0.400 ± 0.000 | 0.400 (20), 0.400 (20) | 0.400 ± 0.000 |',
      '| 4 | VoCo | 0.300, 0.300 | 0.300 ± 0.000 | 0.300 (10), 0.300 (10) | 0.300 ± 0.000 |',
      '| 4 | **gain VoCo − scratch** | −0.100, −0.100 | **−0.100 ± 0.000** | −0.100, −0.100 | **−0.100 ± 0.000** |',
    ]);
    expect(resultsTable(RUNS.filter((r) => r.seed === 0), [2], [0]).split('\n')[2]).toBe('| 2 | scratch | 0.200 | 0.200 | 0.250 (10) | 0.250 |');
    expect(() => resultsTable(RUNS, [8], [0])).toThrow('no validation Dice for 8 volumes, scratch, seed 0');
  });

  test('the plot has one line per size and initialisation, the mean over seeds', () => {
    const svg = dicePlot('Dice', RUNS, [2, 4]);
    for (const label of ['n=2 VoCo', 'n=2 scratch', 'n=4 VoCo', 'n=4 scratch']) expect(svg).toContain(`>${label}</text>`);
    expect(svg.match(/<polyline /g)).toHaveLength(8);
  });

  test('the section between the markers is replaced, the rest kept; no markers is one line', () => {
    const doc = `# Title\n\n${SECTION_BEGIN}\nold\n${SECTION_END}\n\nafter\n`;
    expect(replaceSection('d.md', doc, 'new\n')).toBe(`# Title\n\n${SECTION_BEGIN}\nnew\n${SECTION_END}\n\nafter\n`);
    expect(() => replaceSection('d.md', '# Title\n', 'new')).toThrow(/^d\.md: lacks the lines /);
    expect(() => replaceSection('d.md', `${SECTION_END}\n${SECTION_BEGIN}\n`, 'new')).toThrow(/^d\.md: lacks the lines /);
  });
});
