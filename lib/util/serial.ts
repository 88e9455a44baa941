/**
 * One-at-a-time execution for a policy (concurrent callers on one instance are serialised,
 * never interleaved). Tasks run in call order; a failing task does not stop the ones queued after it.
 */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();
  private queued = 0;

  /** Tasks waiting or running. */
  get pending(): number {
    return this.queued;
  }

  run<T>(task: () => Promise<T>): Promise<T> {
    this.queued++;
    const result = this.tail.then(task).finally(() => {
      this.queued--;
    });
    // The chain only orders tasks; each caller sees its own task's rejection through `result`.
    this.tail = result.catch(() => undefined);
    return result;
  }
}
