/**
 * Self-contained HTML reports: inline SVG charts, inline CSS, no scripts and no external assets, so a
 * report opens offline and can be attached anywhere. Shared by the serving report and the training
 * report.
 */
import { SmolVLAError } from '../errors';
export interface ChartSeries {
  name: string;
  /** [x, y] pairs in x order; a null y breaks the line. */
  points: ReadonlyArray<readonly [number, number | null]>;
  color?: string;
  dashed?: boolean;
  /** Draw as a step function (each value holds until the next x), e.g. a threshold. */
  stepped?: boolean;
}

export type MarkerShape = 'circle' | 'square' | 'triangle' | 'cross';

export interface ChartMarker {
  x: number;
  y: number;
  color: string;
  shape?: MarkerShape;
  /** Tooltip text. */
  label?: string;
}

export interface ChartVerticalLine {
  x: number;
  color?: string;
  label?: string;
  dashed?: boolean;
}

export interface LineChartOptions {
  width?: number;
  height?: number;
  title?: string;
  xLabel?: string;
  yLabel?: string;
  /** Fixed y range; by default it spans the data. */
  yRange?: [number, number];
  xRange?: [number, number];
  markers?: ChartMarker[];
  verticalLines?: ChartVerticalLine[];
  /** Legend entries for marker kinds (series are always listed). */
  markerLegend?: Array<{ name: string; color: string; shape: MarkerShape }>;
  /** Legend entries for kinds of vertical lines (e.g. scene changes). */
  lineLegend?: Array<{ name: string; color: string; dashed?: boolean }>;
}

const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
const COLOR = /^(#[0-9a-fA-F]{3,8}|[a-zA-Z]{1,30}|rgba?\([0-9.,\s%]+\))$/;

/** Escapes text for HTML and SVG content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function color(value: string, field: string): string {
  if (!COLOR.test(value)) throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `${field}: expected a CSS colour (#rgb, a name or rgb()/rgba()), got '${value}'`);
  return value;
}

/** Round tick values: steps of 1, 2 or 5 times a power of ten, about `count` of them. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(Number.isFinite(lo) && Number.isFinite(hi)) || hi <= lo) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  const step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  const first = Math.ceil(lo / step - 1e-9);
  const ticks: number[] = [];
  // Multiples of the step, rounded so that 3 x 0.2 prints as 0.6 (and -0 as 0).
  for (let i = first; i * step <= hi + step * 1e-9; i++) ticks.push(Number((i * step).toPrecision(12)) + 0);
  return ticks;
}

export function fmt(v: number): string {
  return String(Number(v.toPrecision(4)));
}

function px(v: number): string {
  return v.toFixed(1);
}

/**
 * The data range plus 4 % on each side, so points and markers on the extremes are drawn whole
 * inside the frame (the clip path would cut them in half otherwise).
 */
function extent(values: number[], fallback: [number, number]): [number, number] {
  if (values.length === 0) return fallback;
  let lo = values.reduce((a, b) => Math.min(a, b), Infinity);
  let hi = values.reduce((a, b) => Math.max(a, b), -Infinity);
  if (lo === hi) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const margin = (hi - lo) * 0.04;
  return [lo - margin, hi + margin];
}

/** Chart ids on one page must differ even for charts of the same geometry. */
let chartCount = 0;

function markerSvg(shape: MarkerShape, x: number, y: number, fill: string, title: string): string {
  const t = title ? `<title>${escapeHtml(title)}</title>` : '';
  switch (shape) {
    case 'circle':
      return `<circle cx="${px(x)}" cy="${px(y)}" r="3.5" fill="${fill}">${t}</circle>`;
    case 'square':
      return `<rect x="${px(x - 3.5)}" y="${px(y - 3.5)}" width="7" height="7" fill="${fill}">${t}</rect>`;
    case 'triangle':
      return `<path d="M${px(x)} ${px(y - 4)}L${px(x + 4)} ${px(y + 3.5)}L${px(x - 4)} ${px(y + 3.5)}Z" fill="${fill}">${t}</path>`;
    case 'cross':
      return `<path d="M${px(x - 4)} ${px(y - 4)}L${px(x + 4)} ${px(y + 4)}M${px(x + 4)} ${px(y - 4)}L${px(x - 4)} ${px(y + 4)}" stroke="${fill}" stroke-width="2">${t}</path>`;
  }
}

/** A line chart as a standalone <svg> element (inline styles only). */
export function lineChartSvg(series: readonly ChartSeries[], options: LineChartOptions = {}): string {
  const width = options.width ?? 760;
  const height = options.height ?? 320;
  const markers = options.markers ?? [];
  const vlines = options.verticalLines ?? [];
  const legendItems = [
    ...series.map((s, i) => ({ name: s.name, color: color(s.color ?? PALETTE[i % PALETTE.length]!, `series '${s.name}' color`), shape: null as MarkerShape | 'vline' | null, dashed: s.dashed ?? false })),
    ...(options.markerLegend ?? []).map((m) => ({ name: m.name, color: color(m.color, `marker legend '${m.name}' color`), shape: m.shape as MarkerShape | 'vline' | null, dashed: false })),
    ...(options.lineLegend ?? []).map((l) => ({ name: l.name, color: color(l.color, `line legend '${l.name}' color`), shape: 'vline' as const, dashed: l.dashed ?? true })),
  ];
  // Legend rows: items flow left to right and wrap (text width estimated at 6.5 px per character).
  const legendRowHeight = 18;
  const placed: Array<{ x: number; row: number }> = [];
  let cursor = 60;
  let row = 0;
  for (const item of legendItems) {
    const w = 28 + 6.5 * item.name.length;
    if (cursor > 60 && cursor + w > width - 16) {
      row++;
      cursor = 60;
    }
    placed.push({ x: cursor, row });
    cursor += w;
  }
  const legendRows = legendItems.length > 0 ? row + 1 : 0;
  const m = { l: 60, r: 16, t: options.title ? 30 : 12, b: 40 + legendRows * legendRowHeight + (legendRows > 0 ? 4 : 0) };
  const plotW = width - m.l - m.r;
  const plotH = height - m.t - m.b;
  if (plotW < 50 || plotH < 50) throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `lineChartSvg: width ${width} x height ${height} leaves no room for the plot`);

  const xs: number[] = [];
  const ys: number[] = [];
  for (const s of series) {
    for (const [x, y] of s.points) {
      if (Number.isFinite(x)) xs.push(x);
      if (y !== null && Number.isFinite(y)) ys.push(y);
    }
  }
  for (const mk of markers) {
    xs.push(mk.x);
    ys.push(mk.y);
  }
  for (const v of vlines) xs.push(v.x);
  const [x0, x1] = options.xRange ?? extent(xs, [0, 1]);
  const [y0, y1] = options.yRange ?? extent(ys, [0, 1]);
  const sx = (x: number) => m.l + ((x - x0) / (x1 - x0)) * plotW;
  const sy = (y: number) => m.t + (1 - (y - y0) / (y1 - y0)) * plotH;

  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`);
  parts.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`);
  if (options.title) parts.push(`<text x="${px(width / 2)}" y="18" text-anchor="middle" font-size="13" font-weight="bold">${escapeHtml(options.title)}</text>`);
  // Several charts share one HTML page: every chart gets its own clip id.
  const clipId = `plot-${++chartCount}-${[m.l, m.t, plotW, plotH].map((v) => String(v).replace(/[^0-9]/g, '_')).join('-')}`;
  parts.push(`<defs><clipPath id="${clipId}"><rect x="${m.l}" y="${m.t}" width="${plotW}" height="${plotH}"/></clipPath></defs>`);

  for (const t of niceTicks(y0, y1)) {
    parts.push(`<line x1="${m.l}" x2="${m.l + plotW}" y1="${px(sy(t))}" y2="${px(sy(t))}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${m.l - 6}" y="${px(sy(t) + 4)}" text-anchor="end">${fmt(t)}</text>`);
  }
  for (const t of niceTicks(x0, x1, 8)) {
    parts.push(`<line x1="${px(sx(t))}" x2="${px(sx(t))}" y1="${m.t + plotH}" y2="${m.t + plotH + 4}" stroke="#333"/>`);
    parts.push(`<text x="${px(sx(t))}" y="${m.t + plotH + 16}" text-anchor="middle">${fmt(t)}</text>`);
  }
  parts.push(`<rect x="${m.l}" y="${m.t}" width="${plotW}" height="${plotH}" fill="none" stroke="#333"/>`);
  if (options.xLabel) parts.push(`<text x="${px(m.l + plotW / 2)}" y="${m.t + plotH + 32}" text-anchor="middle">${escapeHtml(options.xLabel)}</text>`);
  if (options.yLabel) {
    parts.push(`<text transform="translate(14 ${px(m.t + plotH / 2)}) rotate(-90)" text-anchor="middle">${escapeHtml(options.yLabel)}</text>`);
  }

  parts.push(`<g clip-path="url(#${clipId})">`);
  for (const v of vlines) {
    const c = color(v.color ?? '#999999', `vertical line at ${v.x} color`);
    const dash = v.dashed === false ? '' : ' stroke-dasharray="4 3"';
    parts.push(`<line x1="${px(sx(v.x))}" x2="${px(sx(v.x))}" y1="${m.t}" y2="${m.t + plotH}" stroke="${c}"${dash}>${v.label ? `<title>${escapeHtml(v.label)}</title>` : ''}</line>`);
  }
  series.forEach((s, i) => {
    const c = legendItems[i]!.color;
    let d = '';
    let prev: readonly [number, number] | null = null;
    for (const [x, y] of s.points) {
      if (y === null || !Number.isFinite(y) || !Number.isFinite(x)) {
        prev = null;
        continue;
      }
      if (prev === null) d += `M${px(sx(x))} ${px(sy(y))}`;
      else if (s.stepped) d += `L${px(sx(x))} ${px(sy(prev[1]))}L${px(sx(x))} ${px(sy(y))}`;
      else d += `L${px(sx(x))} ${px(sy(y))}`;
      prev = [x, y];
    }
    if (d) parts.push(`<path d="${d}" fill="none" stroke="${c}" stroke-width="1.6"${s.dashed ? ' stroke-dasharray="6 4"' : ''}><title>${escapeHtml(s.name)}</title></path>`);
  });
  markers.forEach((mk, i) => parts.push(markerSvg(mk.shape ?? 'circle', sx(mk.x), sy(mk.y), color(mk.color, `markers[${i}].color`), mk.label ?? '')));
  parts.push('</g>');

  legendItems.forEach((item, i) => {
    const { x: lx, row: r } = placed[i]!;
    const ly = m.t + plotH + 40 + (r + 1) * legendRowHeight - 4;
    if (item.shape === 'vline') {
      parts.push(`<line x1="${lx + 8}" x2="${lx + 8}" y1="${ly - 12}" y2="${ly + 2}" stroke="${item.color}" stroke-width="2"${item.dashed ? ' stroke-dasharray="4 3"' : ''}/>`);
    } else if (item.shape) parts.push(markerSvg(item.shape, lx + 8, ly - 4, item.color, ''));
    else parts.push(`<line x1="${lx}" x2="${lx + 16}" y1="${ly - 4}" y2="${ly - 4}" stroke="${item.color}" stroke-width="2"${item.dashed ? ' stroke-dasharray="4 3"' : ''}/>`);
    parts.push(`<text x="${lx + 20}" y="${ly}">${escapeHtml(item.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('');
}

/** A complete HTML page around `bodyHtml` (inline CSS for the tables). */
export function htmlDocument(title: string, bodyHtml: string): string {
  return [
    '<!DOCTYPE html>',
    '<html lang="en"><head><meta charset="utf-8">',
    `<title>${escapeHtml(title)}</title>`,
    '<style>body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:12px 0}',
    'th,td{border:1px solid #ccc;padding:4px 10px;text-align:right}th:first-child,td:first-child{text-align:left}',
    'caption{font-weight:bold;text-align:left;padding:4px 0}.note{color:#555;max-width:760px}</style>',
    `</head><body><h1>${escapeHtml(title)}</h1>`,
    bodyHtml,
    '</body></html>',
  ].join('\n');
}

