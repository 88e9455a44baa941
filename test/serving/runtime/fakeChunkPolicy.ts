/**
 * A ChunkPolicy for runtime tests: answers after a scripted number of ticks (the test advances
 * them), with actions that say what they are: [step they are for, episode they were asked in,
 * request number]. Honours abort signals unless told not to (a policy that finishes anyway).
 */
import type { ChunkPolicy, ChunkRequestOptions, ChunkResult } from '../../../lib/serving/chunkPolicy';
import type { RobotObservation } from '../../../lib/policy/inputs';

export const DIM = 3;

interface Pending {
  ticksLeft: number;
  resolve: () => void;
}

export interface FakeAnswer {
  /** Ticks until the answer arrives (0: at the next advance). */
  latency: number;
  /** Rows answered: the full chunk for a miss, fewer for a refine, 0 for a skip. */
  rows: number;
}

export class FakeChunkPolicy implements ChunkPolicy {
  readonly info = { chunkSize: 8, actionDim: DIM };
  episode = 0;
  requests = 0;
  resets = 0;
  readonly steps: number[] = [];
  private pending: Pending[] = [];

  constructor(
    private readonly next: () => FakeAnswer,
    private readonly honourAbort = true,
  ) {}

  requestChunk(_obs: RobotObservation, options: ChunkRequestOptions = {}): Promise<ChunkResult> {
    const id = this.requests++;
    const episode = this.episode;
    const step = options.step ?? 0;
    this.steps.push(step);
    const answer = this.next();
    return new Promise<ChunkResult>((resolve, reject) => {
      const entry: Pending = {
        ticksLeft: answer.latency,
        resolve: () => {
          const actions = new Float32Array(answer.rows * DIM);
          for (let k = 0; k < answer.rows; k++) actions.set([step + k, episode, id], k * DIM);
          resolve({ actions, chunk: answer.rows, actionDim: DIM, decision: answer.rows === 8 ? 'miss' : answer.rows === 0 ? 'hit-skip' : 'hit-refine', similarity: null, computeMs: 1 });
        },
      };
      this.pending.push(entry);
      if (this.honourAbort) {
        options.signal?.addEventListener('abort', () => {
          this.pending = this.pending.filter((p) => p !== entry);
          reject(Object.assign(new Error('aborted'), { code: 'ERR_SMOLVLA_ABORTED' }));
        });
      }
    });
  }

  /** One tick passes: answers whose latency ran out resolve. */
  advance(): void {
    const due = this.pending.filter((p) => p.ticksLeft <= 0);
    this.pending = this.pending.filter((p) => p.ticksLeft > 0);
    for (const p of this.pending) p.ticksLeft--;
    for (const p of due) p.resolve();
  }

  /** Every pending answer arrives now. */
  drain(): void {
    const all = this.pending;
    this.pending = [];
    for (const p of all) p.resolve();
  }

  async reset(): Promise<void> {
    this.resets++;
  }

  async dispose(): Promise<void> {}
}

/** Lets settled promises run their callbacks. */
export async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}
