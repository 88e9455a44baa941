/**
 * The real-time report: queue length over time, every request's decision, the CLS similarity against
 * the threshold with the true scene changes, a few executed action dimensions, and the comparison
 * table (idle ticks, latency percentiles, detection score, tick lateness).
 */
import { escapeHtml, htmlDocument, lineChartSvg, type ChartVerticalLine } from '../../report/html';
import { DECISION_STYLE, similarityRange } from '../report';
import { DECISION_KINDS, type DecisionKind } from '../stats';
import type { RequestRecord, TickRecord } from './metrics';
import { runTableRows, type RunColumn } from './table';

export interface ReportRun extends RunColumn {
  ticks: readonly TickRecord[];
  requests: readonly RequestRecord[];
  /** Per request, the simulator tick its observation was taken at. */
  observedAt: readonly number[];
}

export interface RealtimeReportOptions {
  title?: string;
  sceneChanges?: readonly number[];
  threshold?: number | null;
  notes?: readonly string[];
  /** Action dimensions drawn (default the first 3). */
  actionDims?: number;
}

const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#9467bd'];

function sceneLines(changes: readonly number[]): { verticalLines: ChartVerticalLine[]; lineLegend: Array<{ name: string; color: string }> } {
  return {
    verticalLines: changes.map((x) => ({ x, color: '#d62728', label: `true scene change at tick ${x}` })),
    lineLegend: changes.length > 0 ? [{ name: 'true scene change', color: '#d62728' }] : [],
  };
}

function isDecisionKind(d: string | null): d is DecisionKind {
  return d !== null && (DECISION_KINDS as readonly string[]).includes(d);
}

export function realtimeReportHtml(runs: readonly ReportRun[], options: RealtimeReportOptions = {}): string {
  const title = options.title ?? 'smolvla-node real-time control';
  const scene = sceneLines(options.sceneChanges ?? []);
  const queue = lineChartSvg(
    runs.map((r, i) => ({ name: `${r.label}: queued actions`, points: r.ticks.map((t) => [t.tick, t.queue] as const), color: COLORS[i % COLORS.length]!, stepped: true })),
    { title: 'Queue length over time (0 = idle)', xLabel: 'tick', yLabel: 'queued actions', ...scene },
  );
  const charts: string[] = [queue];
  runs.forEach((run) => {
    const laneOf = (k: DecisionKind) => DECISION_KINDS.length - 1 - DECISION_KINDS.indexOf(k);
    const reqs = run.requests.map((r, i) => ({ r, tick: run.observedAt[i] ?? r.tick })).filter((x) => isDecisionKind(x.r.decision));
    charts.push(
      lineChartSvg([], {
        title: `${run.label}: decision of every request`,
        height: 230,
        xLabel: 'tick (observation)',
        yLabel: 'decision',
        yRange: [-0.6, DECISION_KINDS.length - 0.4],
        markers: reqs.map(({ r, tick }) => {
          const kind = r.decision as DecisionKind;
          return { x: tick, y: laneOf(kind), color: DECISION_STYLE[kind].color, shape: DECISION_STYLE[kind].shape, label: `tick ${tick}: ${kind}${r.similarity === null ? '' : `, similarity ${r.similarity.toFixed(3)}`}` };
        }),
        markerLegend: DECISION_KINDS.map((k) => ({ name: `${laneOf(k)}: ${DECISION_STYLE[k].label}`, color: DECISION_STYLE[k].color, shape: DECISION_STYLE[k].shape })),
        ...scene,
      }),
    );
    const checked = reqs.filter((x) => x.r.similarity !== null);
    if (checked.length > 0) {
      const threshold = options.threshold ?? null;
      const values = checked.map((x) => x.r.similarity!).concat(threshold === null ? [] : [threshold]);
      const first = run.ticks[0]?.tick ?? 0, last = run.ticks[run.ticks.length - 1]?.tick ?? 1;
      charts.push(
        lineChartSvg(
          [
            { name: 'CLS similarity', points: checked.map((x) => [x.tick, x.r.similarity] as const), color: '#333333' },
            ...(threshold === null ? [] : [{ name: 'threshold (similarity > threshold: unchanged)', points: [[first, threshold] as const, [last, threshold] as const], color: '#ff7f0e', dashed: true }]),
          ],
          {
            title: `${run.label}: CLS similarity against the threshold`,
            xLabel: 'tick (observation)',
            yLabel: 'similarity',
            yRange: similarityRange(values),
            markers: checked.map(({ r, tick }) => ({ x: tick, y: r.similarity!, color: DECISION_STYLE[r.decision as DecisionKind].color, shape: DECISION_STYLE[r.decision as DecisionKind].shape })),
            ...scene,
          },
        ),
      );
    }
  });
  const main = runs[0];
  if (main) {
    const dims = Math.min(options.actionDims ?? 3, main.ticks.find((t) => t.action)?.action?.length ?? 0);
    charts.push(
      lineChartSvg(
        Array.from({ length: dims }, (_, j) => ({
          name: `action[${j}]`,
          points: main.ticks.map((t) => [t.tick, t.action ? t.action[j]! : null] as const),
          color: COLORS[j % COLORS.length]!,
        })),
        { title: `${main.label}: executed actions (gaps: idle ticks)`, xLabel: 'tick', yLabel: 'action (robot space)', ...scene },
      ),
    );
  }
  const rows = runTableRows(runs);
  const head = `<tr>${rows[0]!.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr>`;
  const body = rows.slice(1).map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`).join('');
  const table = `<table><caption>Synchronous and asynchronous loops</caption>${head}${body}</table>`;
  const notes = (options.notes ?? []).map((n) => `<p class="note">${escapeHtml(n)}</p>`).join('');
  return htmlDocument(title, `${table}${notes}${charts.join('')}`);
}
