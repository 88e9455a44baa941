/** The real-time comparison table printed by the demo and the benchmark (one column per loop). */
import type { DetectionScore } from '../sim/detection';
import type { Percentiles, RunSummary } from './metrics';

export interface RunColumn {
  label: string;
  summary: RunSummary;
  detection: DetectionScore | null;
}

const ms = (v: number | null) => (v === null ? '-' : `${v.toFixed(1)} ms`);
const pair = (p: Percentiles) => `${ms(p.p50)} / ${ms(p.p95)}`;

/** Rows of label + one cell per run. */
export function runTableRows(columns: readonly RunColumn[]): string[][] {
  const decisions = [...new Set(columns.flatMap((c) => Object.keys(c.summary.byDecision)))].sort();
  return [
    ['', ...columns.map((c) => c.label)],
    ['ticks', ...columns.map((c) => String(c.summary.ticks))],
    ['idle ticks', ...columns.map((c) => `${c.summary.idleTicks} (${c.summary.idlePercent.toFixed(1)} %)`)],
    ['obs -> first action p50 / p95', ...columns.map((c) => pair(c.summary.firstActionMs))],
    ['requests', ...columns.map((c) => String(c.summary.requests))],
    ...decisions.map((d) => [`  ${d}`, ...columns.map((c) => String(c.summary.byDecision[d] ?? 0))]),
    ['largest jump at chunk boundaries', ...columns.map((c) => c.summary.boundaryJump.toFixed(3))],
    [
      'scene changes detected within k ticks',
      ...columns.map((c) => (c.detection ? `${c.detection.detectedWithinK} / ${c.detection.changes} (k = ${c.detection.k})` : '-')),
    ],
    [
      'checks: true / false hits of "changed"',
      ...columns.map((c) => (c.detection ? `${c.detection.truePositives} / ${c.detection.falsePositives} of ${c.detection.checks}` : '-')),
    ],
    ['tick lateness p50 / p99', ...columns.map((c) => `${ms(c.summary.latenessMs.p50)} / ${ms(c.summary.latenessMs.p99)}`)],
  ];
}

/** The table as aligned text lines. */
export function formatRunTable(columns: readonly RunColumn[]): string[] {
  const rows = runTableRows(columns);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  '));
}
