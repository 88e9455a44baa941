/**
 * A least-recently-used cache of decoded episodes, bounded by bytes. Concurrent requests for the same
 * key share one decode, so a batch with many frames of one episode runs ffmpeg once.
 */
import type { DecodedFrames } from './video';

export class FrameCache {
  private readonly entries = new Map<string, DecodedFrames>();
  private readonly pending = new Map<string, Promise<DecodedFrames>>();
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  async get(key: string, load: () => Promise<DecodedFrames>): Promise<DecodedFrames> {
    const hit = this.entries.get(key);
    if (hit) {
      // Re-insert: Map order is the recency order.
      this.entries.delete(key);
      this.entries.set(key, hit);
      return hit;
    }
    let inflight = this.pending.get(key);
    if (!inflight) {
      inflight = load().then(
        (frames) => {
          this.pending.delete(key);
          this.insert(key, frames);
          return frames;
        },
        (err: unknown) => {
          this.pending.delete(key);
          throw err;
        },
      );
      this.pending.set(key, inflight);
    }
    return inflight;
  }

  /** Bytes held now. */
  get size(): number {
    return this.bytes;
  }

  clear(): void {
    this.entries.clear();
    this.bytes = 0;
  }

  private insert(key: string, frames: DecodedFrames): void {
    this.entries.set(key, frames);
    this.bytes += frames.rgb.byteLength;
    // The newest entry stays even when it alone exceeds the budget: its samples are being served.
    for (const [oldKey, old] of this.entries) {
      if (this.bytes <= this.maxBytes || oldKey === key) break;
      this.entries.delete(oldKey);
      this.bytes -= old.rgb.byteLength;
    }
  }
}
