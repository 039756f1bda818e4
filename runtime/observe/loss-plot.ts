export interface Series {
  readonly label: string;
  readonly color: string;
  readonly points: readonly (readonly [step: number, value: number])[];
  /** Points in the moving average drawn over the raw line (default: the plot's). */
  readonly smoothing?: number;
}

const WIDTH = 900;
const HEIGHT = 480;
const MARGIN = { left: 70, right: 160, top: 40, bottom: 50 };

/**
 * A line chart of several series against the training step, as a standalone SVG document (any browser shows
 * it). Each series is drawn faint as logged and strong as a moving average over `smoothing` points.
 */
export function lossPlotSvg(title: string, series: readonly Series[], smoothing = 20): string {
  const all = series.flatMap((s) => s.points).filter(([, v]) => Number.isFinite(v));
  if (all.length === 0) return svgDocument(title, '<text x="80" y="80">no data yet</text>');
  const [x0, x1] = extent(all.map(([s]) => s));
  const [y0, y1] = extent(all.map(([, v]) => v));
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const sx = (s: number) => MARGIN.left + ((s - x0) / (x1 - x0 || 1)) * plotW;
  const sy = (v: number) => MARGIN.top + plotH - ((v - y0) / (y1 - y0 || 1)) * plotH;

  const parts: string[] = [];
  for (const tick of ticks(y0, y1)) {
    parts.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${sy(tick)}" y2="${sy(tick)}" stroke="#ddd"/>`);
    parts.push(`<text x="${MARGIN.left - 8}" y="${sy(tick) + 4}" text-anchor="end">${formatTick(tick)}</text>`);
  }
  for (const tick of ticks(x0, x1)) {
    parts.push(`<text x="${sx(tick)}" y="${MARGIN.top + plotH + 20}" text-anchor="middle">${formatTick(tick)}</text>`);
  }
  parts.push(`<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#444"/>`);
  parts.push(`<text x="${MARGIN.left + plotW / 2}" y="${HEIGHT - 10}" text-anchor="middle">step</text>`);
  series.forEach((s, i) => {
    const finite = s.points.filter(([, v]) => Number.isFinite(v));
    parts.push(polyline(finite, sx, sy, s.color, 0.25));
    parts.push(polyline(movingAverage(finite, s.smoothing ?? smoothing), sx, sy, s.color, 1));
    const ly = MARGIN.top + 16 + i * 20;
    parts.push(`<line x1="${WIDTH - MARGIN.right + 12}" x2="${WIDTH - MARGIN.right + 36}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.color}" stroke-width="3"/>`);
    parts.push(`<text x="${WIDTH - MARGIN.right + 42}" y="${ly}">${escapeXml(s.label)}</text>`);
  });
  return svgDocument(title, parts.join('\n'));
}

function svgDocument(title: string, body: string): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${WIDTH / 2}" y="24" text-anchor="middle" font-size="16">${escapeXml(title)}</text>`,
    body,
    '</svg>',
    '',
  ].join('\n');
}

function polyline(points: readonly (readonly [number, number])[], sx: (s: number) => number, sy: (v: number) => number, color: string, opacity: number): string {
  const coords = points.map(([s, v]) => `${sx(s).toFixed(1)},${sy(v).toFixed(1)}`).join(' ');
  return `<polyline points="${coords}" fill="none" stroke="${color}" stroke-opacity="${opacity}" stroke-width="${opacity < 1 ? 1 : 2}"/>`;
}

export function movingAverage(points: readonly (readonly [number, number])[], window: number): [number, number][] {
  const out: [number, number][] = [];
  let acc = 0;
  points.forEach(([s, v], i) => {
    acc += v;
    if (i >= window) acc -= points[i - window][1];
    out.push([s, acc / Math.min(i + 1, window)]);
  });
  return out;
}

function extent(values: readonly number[]): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return lo === hi ? [lo - 1, hi + 1] : [lo, hi];
}

function ticks(lo: number, hi: number, count = 5): number[] {
  const raw = (hi - lo) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(t);
  return out;
}

function formatTick(v: number): string {
  return Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(1) : String(Number(v.toPrecision(4)));
}

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
