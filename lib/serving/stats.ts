/**
 * Serving statistics (the inference guide's "统计缓存效果" and "记录相似度值"): how often
 * the CLS similarity said "cache", how each call was served, and a bounded history of similarities
 * against the threshold for plotting (report.ts).
 */
import { SmolVLAError } from '../errors';

/** How a control-loop call was served. */
export const DECISION_KINDS = ['miss', 'hit-skip', 'hit-refine', 'reuse'] as const;
export type DecisionKind = (typeof DECISION_KINDS)[number];

/**
 * Why a call sampled a new chunk: the first call after a reset (no previous CLS output), a scene
 * change (similarity not above the threshold), a stable scene whose queued chunk had run out, or
 * real-time chunking (every request samples a guided chunk).
 */
export const MISS_REASONS = ['first', 'scene-changed', 'queue-empty', 'rtc'] as const;
export type MissReason = (typeof MISS_REASONS)[number];

/** A fixed-capacity FIFO that overwrites its oldest element when full. */
export class RingBuffer<T> {
  readonly capacity: number;
  private readonly items: T[] = [];
  private start = 0;
  private pushed = 0;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `RingBuffer capacity: expected an integer >= 1, got ${String(capacity)}`);
    }
    this.capacity = capacity;
  }

  get length(): number {
    return this.items.length;
  }

  /** Elements pushed since construction or clear(), including the overwritten ones. */
  get totalPushed(): number {
    return this.pushed;
  }

  push(item: T): void {
    this.pushed++;
    if (this.items.length < this.capacity) {
      this.items.push(item);
      return;
    }
    this.items[this.start] = item;
    this.start = (this.start + 1) % this.capacity;
  }

  /** Oldest first. */
  toArray(): T[] {
    return [...this.items.slice(this.start), ...this.items.slice(0, this.start)];
  }

  clear(): void {
    this.items.length = 0;
    this.start = 0;
    this.pushed = 0;
  }
}

/** One served call. */
export interface StepRecord {
  /** Call index since the statistics were created or cleared (0-based). */
  step: number;
  /** Episode index: incremented by every reset that keeps the statistics. */
  episode: number;
  /** Wall-clock time of the decision, ms since the epoch. */
  timestamp: number;
  kind: DecisionKind;
  /** Set for misses only. */
  reason: MissReason | null;
  /** Batch-mean CLS similarity; null on a first call and on reuse (no prefix pass). */
  similarity: number | null;
  /** Per-robot similarities when measured. */
  perSample: number[] | null;
  /** The threshold the decision was made with. */
  threshold: number;
  /** The cache decision; null on reuse (nothing was checked). */
  shouldCache: boolean | null;
  /** Time spent serving the call (prefix pass, sampling or refinement), ms. */
  durationMs: number;
}

export type StepRecordInput = Omit<StepRecord, 'step' | 'episode'>;

export interface KindSummary {
  count: number;
  /** Mean time per call of this kind, ms; null when there was none. */
  meanMs: number | null;
}

/** Counters without the history (cheap enough to return from every call). */
export interface StatsSummary {
  steps: number;
  episodes: number;
  /** Calls whose similarity was measured (a previous CLS output existed). */
  checks: number;
  /** Checks decided "cache": similarity above the threshold (the published `should_cache`, per robot too under the 'every-robot' rule). */
  cached: number;
  notCached: number;
  /** cached / checks; null before the first check. */
  hitRate: number | null;
  byKind: Record<DecisionKind, KindSummary>;
  missReasons: Record<MissReason, number>;
  /** The threshold of the latest call; null before any. */
  threshold: number | null;
}

export interface StatsSnapshot extends StatsSummary {
  /** The latest calls, oldest first (bounded by historySize). */
  history: StepRecord[];
  /** Calls that fell out of the bounded history. */
  historyDropped: number;
}

function zeroKinds(): Record<DecisionKind, { count: number; totalMs: number }> {
  return { miss: { count: 0, totalMs: 0 }, 'hit-skip': { count: 0, totalMs: 0 }, 'hit-refine': { count: 0, totalMs: 0 }, reuse: { count: 0, totalMs: 0 } };
}

function zeroReasons(): Record<MissReason, number> {
  return { first: 0, 'scene-changed': 0, 'queue-empty': 0, rtc: 0 };
}

/**
 * Counts and history of served calls. The hit rate counts only calls that measured a similarity:
 * the first call after a reset has nothing to compare with (the published code reports
 * `should_cache` true for it, which would inflate the rate), and reuse calls measure nothing.
 */
export class ServingStats {
  private readonly history: RingBuffer<StepRecord>;
  private kinds = zeroKinds();
  private reasons = zeroReasons();
  private steps = 0;
  private episode = 0;
  private checks = 0;
  private cached = 0;
  private lastThreshold: number | null = null;

  constructor(options: { historySize?: number } = {}) {
    this.history = new RingBuffer<StepRecord>(options.historySize ?? 1000);
  }

  record(input: StepRecordInput): StepRecord {
    if ((input.kind === 'miss') !== (input.reason !== null)) {
      throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `ServingStats.record: reason must be set for a miss and null otherwise, got kind '${input.kind}' with reason ${String(input.reason)}`);
    }
    const rec: StepRecord = { ...input, step: this.steps, episode: this.episode };
    this.steps++;
    const k = this.kinds[input.kind];
    k.count++;
    k.totalMs += input.durationMs;
    if (input.reason !== null) this.reasons[input.reason]++;
    if (input.similarity !== null && input.shouldCache !== null) {
      this.checks++;
      if (input.shouldCache) this.cached++;
    }
    this.lastThreshold = input.threshold;
    this.history.push(rec);
    return rec;
  }

  /** Marks an episode boundary while keeping the counts. */
  newEpisode(): void {
    this.episode++;
  }

  clear(): void {
    this.history.clear();
    this.kinds = zeroKinds();
    this.reasons = zeroReasons();
    this.steps = 0;
    this.episode = 0;
    this.checks = 0;
    this.cached = 0;
    this.lastThreshold = null;
  }

  summary(): StatsSummary {
    const byKind = {} as Record<DecisionKind, KindSummary>;
    for (const kind of DECISION_KINDS) {
      const k = this.kinds[kind];
      byKind[kind] = { count: k.count, meanMs: k.count > 0 ? k.totalMs / k.count : null };
    }
    return {
      steps: this.steps,
      episodes: this.steps > 0 ? this.episode + 1 : 0,
      checks: this.checks,
      cached: this.cached,
      notCached: this.checks - this.cached,
      hitRate: this.checks > 0 ? this.cached / this.checks : null,
      byKind,
      missReasons: { ...this.reasons },
      threshold: this.lastThreshold,
    };
  }

  /** Summary plus history: plain JSON (no typed arrays, no NaN). */
  snapshot(): StatsSnapshot {
    const history = this.history.toArray().map((r) => ({ ...r, perSample: r.perSample ? [...r.perSample] : null }));
    return { ...this.summary(), history, historyDropped: this.history.totalPushed - this.history.length };
  }
}
