/**
 * `output_dir/training_report.html`: one self-contained page (inline SVG, no scripts, no network)
 * with what the seeds' monitoring section and FAQ ask to watch: the delta loss (training
 * and held-out), the VICReg invariance / variance / covariance terms, the cosine similarity of the
 * observation and action CLS projections, the learning rate and gradient norm, and a 2-D view (PCA)
 * of the held-out observation CLS projections coloured by task (or by episode when they share one).
 */
import { promises as fsp } from 'node:fs';

import { escapeHtml, htmlDocument, lineChartSvg, type ChartMarker, type ChartSeries } from '../report/html';
import type { ClsProjections } from './evaluate';
import type { MetricsRecord } from './metrics';

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];

/** Points kept per line: enough for the plot's width, bounded for long runs logged every step. */
const MAX_POINTS = 2000;

function thin<T>(points: T[]): T[] {
  if (points.length <= MAX_POINTS) return points;
  const every = Math.ceil(points.length / MAX_POINTS);
  return points.filter((_, i) => i % every === 0 || i === points.length - 1);
}

function valuesOf(records: MetricsRecord[], kind: MetricsRecord['kind'], key: string): Array<[number, number]> {
  return records.filter((r) => r.kind === kind && typeof r[key] === 'number').map((r) => [r.step, r[key] as number]);
}

function line(records: MetricsRecord[], key: string, name: string, color: string): ChartSeries {
  return { name, points: thin(valuesOf(records, 'train', key)), color };
}

/** Evaluations are sparse: drawn as markers rather than a line. */
function evalMarkers(records: MetricsRecord[], key: string, color: string): ChartMarker[] {
  return valuesOf(records, 'eval', key).map(([x, y]) => ({ x, y, color, shape: 'square', label: `held-out ${key} at step ${x}: ${y}` }));
}

/** The top two principal components of `vectors` (power iteration with deflation), as 2-D points. */
export function pca2(vectors: readonly Float32Array[]): Array<[number, number]> {
  const n = vectors.length;
  const d = vectors[0]?.length ?? 0;
  if (n === 0 || d === 0) return [];
  const mu = new Float64Array(d);
  for (const v of vectors) for (let j = 0; j < d; j++) mu[j] = (mu[j] as number) + (v[j] as number) / n;
  const centred = vectors.map((v) => Float64Array.from(v, (x, j) => x - (mu[j] as number)));
  const cov = new Float64Array(d * d);
  for (const v of centred) for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) cov[i * d + j] = (cov[i * d + j] as number) + (v[i] as number) * (v[j] as number);
  const dot = (a: Float64Array, b: Float64Array) => a.reduce((s, x, j) => s + x * (b[j] as number), 0);
  const components: Float64Array[] = [];
  for (let c = 0; c < 2; c++) {
    // A fixed, non-degenerate start keeps the picture deterministic.
    let u = Float64Array.from({ length: d }, (_, j) => 1 + j / d);
    for (let it = 0; it < 200; it++) {
      const next = new Float64Array(d);
      for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) next[i] = (next[i] as number) + (cov[i * d + j] as number) * (u[j] as number);
      for (const p of components) {
        const k = dot(next, p);
        for (let j = 0; j < d; j++) next[j] = (next[j] as number) - k * (p[j] as number);
      }
      const norm = Math.sqrt(dot(next, next));
      if (norm === 0) break;
      u = next.map((x) => x / norm);
    }
    components.push(u);
  }
  return centred.map((v) => [dot(v, components[0] as Float64Array), dot(v, components[1] as Float64Array)]);
}

export interface ReportInput {
  title: string;
  /** Key facts shown as a table (run settings, final evaluation). */
  summary: Record<string, string | number>;
  records: MetricsRecord[];
  /** Held-out CLS projections from the latest evaluation. */
  projections: ClsProjections | null;
}

export function trainingReportHtml(input: ReportInput): string {
  const r = input.records;
  const lossKey = r.some((x) => typeof x.delta_loss === 'number') ? 'delta_loss' : 'loss';
  const chart = (title: string, series: ChartSeries[], markers: ChartMarker[] = [], yLabel?: string) =>
    `<figure>${lineChartSvg(series, { title, xLabel: 'step', ...(yLabel ? { yLabel } : {}), markers, markerLegend: markers.length ? [{ name: 'held-out', color: markers[0]!.color, shape: 'square' }] : [] })}</figure>`;
  const charts: string[] = [chart('Loss', [line(r, lossKey, `${lossKey} (train)`, COLORS[0]!)], evalMarkers(r, lossKey, COLORS[1]!), lossKey)];
  if (r.some((x) => typeof x.vicreg_invariance === 'number')) {
    charts.push(
      chart('VICReg terms (train)', [
        line(r, 'vicreg_invariance', 'invariance', COLORS[0]!),
        line(r, 'vicreg_variance', 'variance', COLORS[1]!),
        line(r, 'vicreg_covariance', 'covariance', COLORS[2]!),
      ]),
      chart('VICReg loss', [line(r, 'vicreg', 'vicreg (train)', COLORS[0]!)], evalMarkers(r, 'vicreg', COLORS[1]!)),
      chart('Cosine similarity of obs / act CLS projections', [line(r, 'cls_cosine', 'train', COLORS[0]!)], evalMarkers(r, 'cls_cosine', COLORS[1]!)),
    );
  }
  charts.push(chart('Learning rate', [line(r, 'lr', 'lr', COLORS[0]!)]), chart('Gradient norm (before clipping)', [line(r, 'grad_norm', 'grad norm', COLORS[0]!)]));
  const p = input.projections;
  if (p && p.obs.length >= 2) {
    // By task; by episode when the held-out frames all share one task.
    const byTask = new Set(p.tasks).size > 1;
    const groups = byTask ? p.tasks : p.episodes.map((e) => `episode ${e}`);
    const names = [...new Set(groups)];
    const colorOf = (g: string) => COLORS[names.indexOf(g) % COLORS.length]!;
    const points = pca2(p.obs);
    charts.push(
      `<figure>${lineChartSvg([], {
        title: `Held-out observation CLS projections (PCA), by ${byTask ? 'task' : 'episode'}`,
        xLabel: 'principal component 1',
        yLabel: 'component 2',
        markers: points.map(([x, y], i) => ({ x, y, color: colorOf(groups[i]!), label: `${p.tasks[i]} (episode ${p.episodes[i]})` })),
        markerLegend: names.map((g) => ({ name: g, color: colorOf(g), shape: 'circle' })),
      })}</figure>`,
    );
  }
  const rows = Object.entries(input.summary)
    .map(([k, v]) => `<tr><td>${escapeHtml(k)}</td><td>${escapeHtml(typeof v === 'number' ? String(Number(v.toPrecision(6))) : v)}</td></tr>`)
    .join('');
  return htmlDocument(input.title, `<table>${rows}</table>\n${charts.join('\n')}`);
}

/** Writes the report atomically (a reader never sees half a page). */
export async function writeTrainingReport(file: string, input: ReportInput): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await fsp.writeFile(tmp, trainingReportHtml(input));
  await fsp.rename(tmp, file);
}
