/**
 * The serving report: the CLS similarity against the threshold, the decision of every call and scene
 * changes (the inference guide's "绘制相似度曲线"), with the final statistics.
 */
import { escapeHtml, fmt, htmlDocument, lineChartSvg, type ChartMarker, type MarkerShape } from '../report/html';
import { DECISION_KINDS, MISS_REASONS, type DecisionKind, type StatsSnapshot } from './stats';

/** How each decision kind is drawn. */
export const DECISION_STYLE: Record<DecisionKind, { color: string; shape: MarkerShape; label: string }> = {
  miss: { color: '#d62728', shape: 'cross', label: 'miss (full sampling)' },
  'hit-skip': { color: '#2ca02c', shape: 'circle', label: 'hit / skip' },
  'hit-refine': { color: '#1f77b4', shape: 'square', label: 'hit / refine' },
  reuse: { color: '#7f7f7f', shape: 'triangle', label: 'reuse (no prefix pass)' },
};

export interface ServingReportOptions {
  title?: string;
  /** Steps where the scene really changed (ground truth of a demo or benchmark). */
  sceneChanges?: number[];
  /** Extra paragraphs (plain text). */
  notes?: string[];
}

function table(caption: string, header: string[], rows: Array<Array<string | number>>): string {
  const head = `<tr>${header.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr>`;
  const body = rows.map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(String(c))}</td>`).join('')}</tr>`).join('');
  return `<table><caption>${escapeHtml(caption)}</caption>${head}${body}</table>`;
}

function pct(n: number, d: number): string {
  return d > 0 ? `${((100 * n) / d).toFixed(1)} %` : '–';
}

/** The similarity axis: the data and the threshold with a margin of 0.05 (at least 0.2 wide), not a fixed [0, 1]. */
export function similarityRange(values: readonly number[]): [number, number] {
  if (values.length === 0) return [0, 1];
  let lo = Math.min(...values) - 0.05;
  let hi = Math.max(...values) + 0.05;
  if (hi - lo < 0.2) {
    const mid = (hi + lo) / 2;
    lo = mid - 0.1;
    hi = mid + 0.1;
  }
  return [lo, hi];
}

function decisionMarker(r: StatsSnapshot['history'][number], y: number): ChartMarker {
  return {
    x: r.step,
    y,
    color: DECISION_STYLE[r.kind].color,
    shape: DECISION_STYLE[r.kind].shape,
    label: `step ${r.step}: ${r.kind}${r.reason ? ` (${r.reason})` : ''}${r.similarity === null ? '' : `, similarity ${fmt(r.similarity)}`}, threshold ${fmt(r.threshold)}`,
  };
}

/**
 * The serving report: similarity per call against the threshold (stepped: it moves when the
 * adaptive controller adjusts it), each checked call's decision as a marker (calls without a
 * similarity appear only in the decision lanes below), scene changes and episode starts as vertical lines, then
 * the statistics tables.
 */
export function servingReportHtml(snapshot: StatsSnapshot, options: ServingReportOptions = {}): string {
  const title = options.title ?? 'SmolVLA serving report';
  const h = snapshot.history;
  const values = h.flatMap((r) => (r.similarity === null ? [r.threshold] : [r.similarity, r.threshold]));
  const yRange = similarityRange(values);
  const episodeStarts = h.filter((r, i) => i > 0 && r.episode !== h[i - 1]!.episode);
  // The line joins measured similarities across reuse calls (which measure none) but not across
  // episodes.
  const similarityPoints: Array<readonly [number, number | null]> = [];
  h.forEach((r, i) => {
    if (i > 0 && r.episode !== h[i - 1]!.episode) similarityPoints.push([r.step - 0.5, null]);
    if (r.similarity !== null) similarityPoints.push([r.step, r.similarity]);
  });
  const xRange: [number, number] | undefined = h.length > 0 ? [h[0]!.step - 0.5, h[h.length - 1]!.step + 0.5] : undefined;
  const chart = lineChartSvg(
    [
      { name: 'CLS similarity', points: similarityPoints, color: '#333333' },
      { name: 'threshold (similarity > threshold → cache)', points: h.map((r) => [r.step, r.threshold] as const), color: '#ff7f0e', dashed: true, stepped: true },
    ],
    {
      title: 'CLS similarity against the threshold',
      height: 380,
      xLabel: 'step',
      yLabel: 'similarity',
      yRange,
      ...(xRange ? { xRange } : {}),
      // Calls without a similarity (first calls, reuse) are not placed on the similarity axis: they
      // are in the decision lanes below.
      markers: h.flatMap((r) => (r.similarity === null ? [] : [decisionMarker(r, r.similarity)])),
      markerLegend: DECISION_KINDS.map((k) => ({ name: DECISION_STYLE[k].label, color: DECISION_STYLE[k].color, shape: DECISION_STYLE[k].shape })),
      lineLegend: [
        ...((options.sceneChanges ?? []).length > 0 ? [{ name: 'true scene change', color: '#d62728' }] : []),
        ...(episodeStarts.length > 0 ? [{ name: 'episode start', color: '#999999', dashed: false }] : []),
      ],
      verticalLines: [
        ...(options.sceneChanges ?? []).map((x) => ({ x, color: '#d62728', label: `scene change at step ${x}` })),
        ...episodeStarts.map((r) => ({ x: r.step - 0.5, color: '#999999', label: `episode ${r.episode} starts`, dashed: false })),
      ],
    },
  );

  const lanes = lineChartSvg([], {
    title: 'Decision of every call',
    height: 220,
    xLabel: 'step',
    yLabel: 'decision',
    yRange: [-0.6, DECISION_KINDS.length - 0.4],
    ...(xRange ? { xRange } : {}),
    markers: h.map((r) => ({ ...decisionMarker(r, DECISION_KINDS.length - 1 - DECISION_KINDS.indexOf(r.kind)) })),
    markerLegend: DECISION_KINDS.map((k) => ({ name: `${DECISION_KINDS.length - 1 - DECISION_KINDS.indexOf(k)}: ${DECISION_STYLE[k].label}`, color: DECISION_STYLE[k].color, shape: DECISION_STYLE[k].shape })),
    verticalLines: (options.sceneChanges ?? []).map((x) => ({ x, color: '#d62728', label: `scene change at step ${x}` })),
    lineLegend: (options.sceneChanges ?? []).length > 0 ? [{ name: 'true scene change', color: '#d62728' }] : [],
  });

  const s = snapshot;
  const summary = table('Statistics', ['', 'value'], [
    ['calls', s.steps],
    ['episodes', s.episodes],
    ['similarity checks', s.checks],
    ['cached (similarity > threshold)', s.cached],
    ['not cached', s.notCached],
    ['hit rate', s.hitRate === null ? '–' : `${(100 * s.hitRate).toFixed(1)} %`],
    ['final threshold', s.threshold === null ? '–' : fmt(s.threshold)],
  ]);
  const kinds = table(
    'Decisions',
    ['kind', 'calls', 'share', 'mean time (ms)'],
    DECISION_KINDS.map((k) => [DECISION_STYLE[k].label, s.byKind[k].count, pct(s.byKind[k].count, s.steps), s.byKind[k].meanMs === null ? '–' : s.byKind[k].meanMs.toFixed(2)]),
  );
  const reasons = table('Why misses sampled', ['reason', 'calls'], MISS_REASONS.map((r) => [r, s.missReasons[r]]));
  const coverage = h.length > 0
    ? `The chart shows calls ${h[0]!.step}–${h[h.length - 1]!.step}${s.historyDropped > 0 ? ` (${s.historyDropped} older calls are only in the counts)` : ''}.`
    : 'No calls were recorded.';
  const notes = [coverage, ...(options.notes ?? [])].map((n) => `<p class="note">${escapeHtml(n)}</p>`).join('');
  return htmlDocument(title, `${chart}${lanes}${notes}${summary}${kinds}${reasons}`);
}
