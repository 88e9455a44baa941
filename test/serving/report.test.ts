/** Self-contained HTML/SVG reports: structure, escaping, no external assets. */
import { escapeHtml, lineChartSvg, niceTicks } from '../../lib/report/html';
import { servingReportHtml } from '../../lib/serving/report';
import { ServingStats } from '../../lib/serving/stats';

function snapshotWithAllKinds() {
  const s = new ServingStats();
  const base = { timestamp: 0, perSample: null, durationMs: 1 };
  s.record({ ...base, kind: 'miss', reason: 'first', similarity: null, threshold: 0.5, shouldCache: true });
  s.record({ ...base, kind: 'hit-skip', reason: null, similarity: 0.9, threshold: 0.5, shouldCache: true });
  s.record({ ...base, kind: 'reuse', reason: null, similarity: null, threshold: 0.5, shouldCache: null });
  s.record({ ...base, kind: 'hit-refine', reason: null, similarity: 0.8, threshold: 0.55, shouldCache: true });
  s.newEpisode();
  s.record({ ...base, kind: 'miss', reason: 'scene-changed', similarity: -0.2, threshold: 0.55, shouldCache: false });
  return s.snapshot();
}

describe('lineChartSvg', () => {
  it('draws one path per series, breaking lines at null values, with a legend and axes', () => {
    const svg = lineChartSvg(
      [
        { name: 'loss', points: [[0, 1], [1, 0.5], [2, null], [3, 0.25], [4, 0.2]] },
        { name: 'lr', points: [[0, 0.1], [4, 0.2]], stepped: true, dashed: true, color: '#ff0000' },
      ],
      { title: 'Training', xLabel: 'step', yLabel: 'value' },
    );
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.endsWith('</svg>')).toBe(true);
    const paths = [...svg.matchAll(/<path d="([^"]+)" fill="none"/g)].map((m) => m[1]!);
    expect(paths).toHaveLength(2);
    expect(paths[0]!.match(/M/g)).toHaveLength(2); // the null splits the loss line in two
    expect(paths[1]!.match(/L/g)).toHaveLength(2); // a step: horizontal then vertical
    for (const text of ['Training', '>step<', '>value<', '>loss<', '>lr<', 'stroke="#ff0000"']) expect(svg).toContain(text);
  });

  it('escapes text and rejects colours that could break out of an attribute', () => {
    const svg = lineChartSvg([{ name: '<script>alert(1)</script>', points: [[0, 0], [1, 1]] }]);
    expect(svg).not.toContain('<script>');
    expect(svg).toContain('&lt;script&gt;');
    expect(() => lineChartSvg([{ name: 'x', points: [[0, 0]], color: 'red" onload="x' }])).toThrow("series 'x' color: expected a CSS colour");
    expect(escapeHtml(`a&b<"'>`)).toBe('a&amp;b&lt;&quot;&#39;&gt;');
  });

  it('gives charts of different sizes different clip ids (several charts share a page)', () => {
    const clip = (svg: string) => /<clipPath id="([^"]+)">/.exec(svg)![1];
    const a = lineChartSvg([{ name: 'a', points: [[0, 1]] }]);
    const b = lineChartSvg([{ name: 'a', points: [[0, 1]] }], { height: 400 });
    expect(clip(a)).not.toBe(clip(b));
    expect(a).toContain(`clip-path="url(#${clip(a)})"`);
  });

  it('handles empty and constant data without NaN', () => {
    expect(lineChartSvg([])).not.toContain('NaN');
    expect(lineChartSvg([{ name: 'c', points: [[0, 3], [5, 3]] }])).not.toContain('NaN');
    expect(() => lineChartSvg([], { width: 40 })).toThrow('leaves no room for the plot');
  });

  it('picks round ticks', () => {
    expect(niceTicks(0, 1)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(-0.3, 0.3, 6)).toEqual([-0.3, -0.2, -0.1, 0, 0.1, 0.2, 0.3]);
    expect(niceTicks(0, 97, 5)).toEqual([0, 20, 40, 60, 80]);
    expect(niceTicks(2, 2)).toEqual([2]);
  });
});

describe('servingReportHtml', () => {
  it('is one self-contained page: similarity vs threshold, every decision kind, scene changes, statistics', () => {
    const html = servingReportHtml(snapshotWithAllKinds(), { title: 'Demo <run>', sceneChanges: [4], notes: ['calibrated threshold 0.55'] });
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    // No external assets, no scripts.
    expect(html).not.toMatch(/<script|<link|src=|href=|@import|url\(http/i);
    expect(html).toContain('<title>Demo &lt;run&gt;</title>');
    for (const label of ['CLS similarity', 'threshold (similarity &gt; threshold → cache)', 'miss (full sampling)', 'hit / skip', 'hit / refine', 'reuse (no prefix pass)']) {
      expect(html).toContain(label);
    }
    expect(html).toContain('<title>scene change at step 4</title>');
    expect(html).toContain('<title>episode 1 starts</title>');
    expect(html).toContain('step 4: miss (scene-changed), similarity -0.2, threshold 0.55');
    // Statistics table: 3 checks, 2 cached -> 66.7 %; per kind and per miss reason.
    expect(html).toContain('<td>hit rate</td><td>66.7 %</td>');
    expect(html).toContain('<td>final threshold</td><td>0.55</td>');
    expect(html).toContain('<td>scene-changed</td><td>1</td>');
    expect(html).toContain('<p class="note">calibrated threshold 0.55</p>');
    expect(html).not.toContain('NaN');
  });

  it('renders an empty history', () => {
    const html = servingReportHtml(new ServingStats().snapshot());
    expect(html).toContain('No calls were recorded.');
    expect(html).toContain('<td>hit rate</td><td>–</td>');
  });
});
