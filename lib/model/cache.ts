/**
 * A KV cache handle: the native prefix pass's keys/values, never copied into JS. Its native bytes are
 * reported to V8's GC; dispose() (or `using`) frees them at once.
 */
import type { NativeCache } from '../native';
import { Tensor } from '../tensor';

export class KVCache implements Disposable {
  readonly handle: NativeCache;

  constructor(handle: NativeCache) {
    this.handle = handle;
  }

  get batchSize(): number {
    return this.handle.batchSize;
  }

  /** Prefix tokens (P), including padding. */
  get prefixLength(): number {
    return this.handle.prefixLength;
  }

  /** Native memory held by the keys and values. */
  get bytes(): number {
    return this.handle.bytes;
  }

  get disposed(): boolean {
    return this.handle.disposed;
  }

  /** (B, P) bool: which prefix tokens are valid. */
  padMasks(): Tensor {
    return new Tensor(this.handle.padMasks());
  }

  /** (B, Ncp, Dv): the prefix CLS outputs of the pass that made this cache (CLS head only). */
  obsClsOut(): Tensor | null {
    const t = this.handle.obsClsOut();
    return t ? new Tensor(t) : null;
  }

  /** Frees the native keys/values now (work already running on them keeps its own reference). */
  dispose(): void {
    this.handle.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
