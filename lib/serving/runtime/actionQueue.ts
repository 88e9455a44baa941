/**
 * The queue of timed actions a control runtime executes from: each action carries the control step
 * it is meant for. Invariants (checked after every merge): steps strictly increase, and no action is
 * for a step at or before the last executed one, so no step is executed twice and a late chunk's
 * past actions never reach the robot.
 */
import type { MergeFn, MergeInfo, TimedAction } from './aggregate';

export class TimedActionQueue {
  private items: TimedAction[] = [];
  private executed = -1;

  /** The last executed control step (-1 before the first). */
  get lastExecuted(): number {
    return this.executed;
  }

  /** The step the next executed action will be for when the queue holds it, or would be for. */
  get nextStep(): number {
    return this.items[0]?.step ?? this.executed + 1;
  }

  get length(): number {
    return this.items.length;
  }

  /** The next `n` queued actions, oldest first (copies of the list, live actions). */
  peek(n: number): TimedAction[] {
    return this.items.slice(0, Math.max(0, n));
  }

  /** Removes and returns the next action (marking its step executed), or null when empty. */
  pop(): TimedAction | null {
    const next = this.items.shift();
    if (!next) return null;
    this.executed = next.step;
    return next;
  }

  /** Merges an arriving chunk with `merge`; returns how many incoming actions were for past steps. */
  merge(incoming: readonly TimedAction[], merge: MergeFn, info: Omit<MergeInfo, 'lastExecuted'>): number {
    const dropped = incoming.filter((a) => a.step <= this.executed).length;
    const merged = merge(this.items, incoming, { ...info, lastExecuted: this.executed });
    // A user merge may return anything: keep only future steps, in order, once each.
    const clean: TimedAction[] = [];
    for (const a of [...merged].sort((x, y) => x.step - y.step)) {
      if (a.step <= this.executed) continue;
      if (clean.length > 0 && clean[clean.length - 1]!.step === a.step) continue;
      clean.push(a);
    }
    this.items = clean;
    return dropped;
  }

  /** Forgets queued actions and restarts the step count (a new episode). */
  reset(): void {
    this.items = [];
    this.executed = -1;
  }
}
