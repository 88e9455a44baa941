/**
 * The synchronous baseline: one PolicyServer.step per control step, the robot waiting for each
 * answer (the loop the demo ran before the real-time runtime). At `fps`, every tick that passes
 * while a step computes is an idle tick; records come out in the runtime's format so both loops
 * share one summary table.
 */
import type { PolicyServer } from '../server';
import type { RequestRecord, TickRecord } from '../runtime/metrics';
import type { SimRobot } from './simRobot';

export interface SyncRun {
  ticks: TickRecord[];
  requests: RequestRecord[];
  /** Per request, the tick its observation was taken at (the simulator's clock). */
  observedAt: number[];
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function runSyncLoop(server: PolicyServer, robot: SimRobot, ticks: number, fps: number): Promise<SyncRun> {
  const period = 1000 / fps;
  const out: SyncRun = { ticks: [], requests: [], observedAt: [] };
  const t0 = performance.now();
  let step = 0;
  while (robot.tick < ticks) {
    const start = performance.now();
    const observedAt = robot.tick;
    const r = await server.step(robot.observe());
    const elapsed = performance.now() - start;
    const id = out.requests.length;
    out.requests.push({
      id,
      tick: observedAt,
      step,
      mustGo: true,
      sentAt: start - t0,
      receivedAt: start - t0 + elapsed,
      decision: r.decision.kind,
      similarity: r.similarity?.mean ?? null,
      sceneChanged: r.similarity === null ? null : r.decision.reason === 'scene-changed',
      actions: 1,
      late: 0,
      computeMs: elapsed,
      firstActionMs: elapsed,
      outcome: 'merged',
      error: null,
    });
    out.observedAt.push(observedAt);
    // The robot waited: every period that passed beyond the step's own tick was idle.
    const lost = Math.min(ticks - robot.tick - 1, Math.max(0, Math.ceil(elapsed / period) - 1));
    for (let i = 0; i < lost; i++) {
      out.ticks.push({ tick: robot.tick, at: start - t0 + (i + 1) * period, latenessMs: 0, step: null, action: null, request: null, queue: 0, inFlight: true });
      robot.idle();
    }
    const action = r.actions[0]!;
    out.ticks.push({ tick: robot.tick, at: performance.now() - t0, latenessMs: Math.max(0, elapsed - period), step, action: Float32Array.from(action), request: id, queue: r.queuedActions, inFlight: false });
    robot.act(action, step++);
    const rest = period - ((performance.now() - start) % period);
    if (robot.tick < ticks) await sleep(rest);
  }
  return out;
}
