/** ServingStats and RingBuffer: the counts and the bounded similarity history. */
import { RingBuffer, ServingStats, type StepRecordInput } from '../../lib/serving/stats';

function input(over: Partial<StepRecordInput>): StepRecordInput {
  return { timestamp: 1, kind: 'hit-skip', reason: null, similarity: 0.9, perSample: [0.9], threshold: 0.5, shouldCache: true, durationMs: 2, ...over };
}

describe('RingBuffer', () => {
  it('keeps the newest `capacity` items, oldest first', () => {
    const r = new RingBuffer<number>(3);
    for (let i = 0; i < 7; i++) r.push(i);
    expect(r.toArray()).toEqual([4, 5, 6]);
    expect([r.length, r.totalPushed]).toEqual([3, 7]);
    r.clear();
    expect(r.toArray()).toEqual([]);
    expect(() => new RingBuffer(0)).toThrow('RingBuffer capacity: expected an integer >= 1, got 0');
  });
});

describe('ServingStats', () => {
  it('counts cached / not cached over measured checks only, and each decision kind', () => {
    const s = new ServingStats();
    s.record(input({ kind: 'miss', reason: 'first', similarity: null, perSample: null, shouldCache: true, durationMs: 10 }));
    s.record(input({}));
    s.record(input({ kind: 'reuse', similarity: null, perSample: null, shouldCache: null, durationMs: 0 }));
    s.record(input({ kind: 'miss', reason: 'scene-changed', similarity: 0.1, shouldCache: false, durationMs: 20 }));
    s.record(input({ kind: 'hit-refine', durationMs: 4 }));
    const sum = s.summary();
    expect(sum).toEqual({
      steps: 5,
      episodes: 1,
      checks: 3,
      cached: 2,
      notCached: 1,
      hitRate: 2 / 3,
      byKind: {
        miss: { count: 2, meanMs: 15 },
        'hit-skip': { count: 1, meanMs: 2 },
        'hit-refine': { count: 1, meanMs: 4 },
        reuse: { count: 1, meanMs: 0 },
      },
      missReasons: { first: 1, 'scene-changed': 1, 'queue-empty': 0, rtc: 0 },
      threshold: 0.5,
    });
  });

  it('bounds the history and reports what fell out; the snapshot is plain JSON', () => {
    const s = new ServingStats({ historySize: 2 });
    for (let i = 0; i < 5; i++) s.record(input({ similarity: i / 10, perSample: [i / 10] }));
    const snap = s.snapshot();
    expect(snap.history.map((h) => [h.step, h.similarity])).toEqual([[3, 0.3], [4, 0.4]]);
    expect(snap.historyDropped).toBe(3);
    expect(JSON.parse(JSON.stringify(snap))).toEqual(snap);
  });

  it('has a null hit rate before any check, tracks episodes, clears', () => {
    const s = new ServingStats();
    expect(s.summary()).toMatchObject({ steps: 0, episodes: 0, hitRate: null, threshold: null });
    s.record(input({}));
    s.newEpisode();
    s.record(input({}));
    expect(s.snapshot().history.map((h) => h.episode)).toEqual([0, 1]);
    expect(s.summary().episodes).toBe(2);
    s.clear();
    expect(s.snapshot()).toMatchObject({ steps: 0, checks: 0, history: [], historyDropped: 0 });
  });

  it('requires a reason exactly for misses', () => {
    const s = new ServingStats();
    expect(() => s.record(input({ kind: 'miss', reason: null }))).toThrow("reason must be set for a miss and null otherwise, got kind 'miss' with reason null");
    expect(() => s.record(input({ reason: 'first' }))).toThrow("got kind 'hit-skip' with reason first");
  });
});
