/**
 * Joins requests from several connections into one model call when they arrive together. A request
 * waits at most `maxWaitMs` for others (none when `maxBatch` are already waiting); while the model
 * runs, new requests queue and go as the next batch the moment it finishes (they have waited
 * already). A batch that fails is retried one request at a time, so a bad observation fails only
 * its own connection and the others still get their chunks.
 */
import { argumentError } from '../../errors';

export interface BatcherOptions {
  /** Most requests in one model call (default 8). */
  maxBatch?: number;
  /** How long a request waits for company when the model is idle, ms (default 2; 0: never waits). */
  maxWaitMs?: number;
}

interface Pending<Req, Res> {
  request: Req;
  resolve: (r: Res) => void;
  reject: (e: unknown) => void;
}

export class RequestBatcher<Req, Res> {
  readonly maxBatch: number;
  readonly maxWaitMs: number;
  private readonly run: (requests: Req[]) => Promise<Res[]>;
  private queue: Array<Pending<Req, Res>> = [];
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  /** counts[k]: model calls made with k requests. */
  private readonly counts: number[];

  constructor(run: (requests: Req[]) => Promise<Res[]>, options: BatcherOptions = {}) {
    this.run = run;
    this.maxBatch = options.maxBatch ?? 8;
    this.maxWaitMs = options.maxWaitMs ?? 2;
    if (!Number.isInteger(this.maxBatch) || this.maxBatch < 1 || this.maxBatch > 256) throw argumentError('maxBatch', 'an integer in [1, 256]', this.maxBatch);
    if (!Number.isFinite(this.maxWaitMs) || this.maxWaitMs < 0 || this.maxWaitMs > 1000) throw argumentError('maxWaitMs', 'a number of ms in [0, 1000]', this.maxWaitMs);
    this.counts = new Array<number>(this.maxBatch + 1).fill(0);
  }

  /** Model calls so far by batch size: `counts[k]` calls of k requests. */
  batchCounts(): number[] {
    return [...this.counts];
  }

  submit(request: Req): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      this.queue.push({ request, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.running || this.queue.length === 0) return;
    if (this.queue.length >= this.maxBatch || this.maxWaitMs === 0) {
      this.dispatch();
    } else {
      this.timer ??= setTimeout(() => this.dispatch(), this.maxWaitMs);
    }
  }

  private dispatch(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.running || this.queue.length === 0) return;
    const batch = this.queue.splice(0, this.maxBatch);
    this.running = true;
    void this.execute(batch).finally(() => {
      this.running = false;
      // Whoever queued during the call has waited already: no extra wait.
      if (this.queue.length > 0) this.dispatch();
    });
  }

  private async execute(batch: Array<Pending<Req, Res>>): Promise<void> {
    try {
      this.counts[batch.length]!++;
      const results = await this.run(batch.map((p) => p.request));
      batch.forEach((p, i) => p.resolve(results[i]!));
    } catch (err) {
      if (batch.length === 1) {
        batch[0]!.reject(err);
        return;
      }
      for (const p of batch) {
        try {
          this.counts[1]!++;
          p.resolve((await this.run([p.request]))[0]!);
        } catch (e) {
          p.reject(e);
        }
      }
    }
  }
}
