/**
 * Scene-change detection against the simulator's ground truth. A checked request (one whose policy
 * said changed or unchanged) truly saw a change when the scene it observed differs from the scene the
 * previous checked request observed. A true change at tick c is "detected within k ticks" when the
 * first checked request observed at or after c flags it and was observed at most k ticks after c.
 */
export interface CheckedObservation {
  /** Tick the observation was taken at (the simulator's clock). */
  tick: number;
  /** The policy flagged a new scene. */
  flagged: boolean;
}

export interface DetectionScore {
  /** True scene changes within the run. */
  changes: number;
  /** Of those, flagged by the first check after them within k ticks. */
  detectedWithinK: number;
  k: number;
  checks: number;
  truePositives: number;
  falsePositives: number;
  falseNegatives: number;
  trueNegatives: number;
}

export function scoreDetection(checks: readonly CheckedObservation[], sceneAt: (tick: number) => number, changeTicks: readonly number[], k: number): DetectionScore {
  const s: DetectionScore = { changes: changeTicks.length, detectedWithinK: 0, k, checks: checks.length, truePositives: 0, falsePositives: 0, falseNegatives: 0, trueNegatives: 0 };
  checks.forEach((c, i) => {
    if (i === 0) return;
    const changed = sceneAt(c.tick) !== sceneAt(checks[i - 1]!.tick);
    if (changed && c.flagged) s.truePositives++;
    else if (changed) s.falseNegatives++;
    else if (c.flagged) s.falsePositives++;
    else s.trueNegatives++;
  });
  for (const change of changeTicks) {
    const first = checks.find((c) => c.tick >= change);
    if (first && first.flagged && first.tick - change <= k) s.detectedWithinK++;
  }
  return s;
}
