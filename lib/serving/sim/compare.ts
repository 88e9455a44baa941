/**
 * Runs one policy through both control loops on the simulated robot: the asynchronous ControlRuntime
 * (LocalChunkPolicy decisions) and the synchronous baseline (one PolicyServer step per control step),
 * and scores both against the simulator's scene changes. Shared by the demo and the benchmark.
 */
import type { AggregateName } from '../runtime/aggregate';
import { ControlRuntime } from '../runtime/controlRuntime';
import { summarizeRun, type RequestRecord } from '../runtime/metrics';
import type { ReportRun } from '../runtime/report';
import { LocalChunkPolicy, type LocalPolicyLike } from '../localPolicy';
import { PolicyServer, type HitMode } from '../server';
import { scoreDetection } from './detection';
import { SimRobot, type SimRobotOptions } from './simRobot';
import { runSyncLoop } from './syncLoop';

export interface CompareOptions {
  robot: SimRobotOptions;
  ticks: number;
  fps: number;
  /** chunk_size_threshold of the asynchronous loop. */
  chunkSizeThreshold: number;
  aggregate: AggregateName;
  hitMode: HitMode;
  reuseSteps: number;
  /** Detection window in ticks. */
  k: number;
}

export interface Comparison {
  /** [asynchronous, synchronous]. */
  runs: [ReportRun, ReportRun];
  sceneChanges: number[];
  sceneAt(tick: number): number;
}

export async function compareLoops(policy: LocalPolicyLike, o: CompareOptions): Promise<Comparison> {
  policy.reset();
  const asyncRobot = new SimRobot(o.robot);
  const local = new LocalChunkPolicy(policy, { hitMode: o.hitMode, reuseSteps: o.reuseSteps, fps: o.fps });
  const runtime = new ControlRuntime(local, asyncRobot, { fps: o.fps, chunkSizeThreshold: o.chunkSizeThreshold, aggregate: o.aggregate });
  let asyncRecords;
  try {
    await runtime.run(o.ticks);
    asyncRecords = runtime.records();
  } finally {
    await local.dispose();
  }
  // The robot ticks (act or idle) before the runtime observes within a tick.
  const asyncObserved = asyncRecords.requests.map((r) => r.tick + 1);

  policy.reset();
  const server = new PolicyServer(policy, { hitMode: o.hitMode, reuseSteps: o.reuseSteps });
  let sync;
  try {
    sync = await runSyncLoop(server, new SimRobot(o.robot), o.ticks, o.fps);
  } finally {
    await server.dispose();
  }

  const sceneChanges = asyncRobot.sceneChanges(o.ticks);
  const sceneAt = (t: number) => asyncRobot.sceneAt(t);
  const detect = (requests: readonly RequestRecord[], observed: readonly number[]) =>
    scoreDetection(requests.flatMap((r, i) => (r.sceneChanged === null ? [] : [{ tick: observed[i]!, flagged: r.sceneChanged }])), sceneAt, sceneChanges, o.k);
  return {
    runs: [
      {
        label: `async (g ${o.chunkSizeThreshold}, ${o.hitMode})`,
        summary: summarizeRun(asyncRecords.ticks, asyncRecords.requests, 0),
        detection: detect(asyncRecords.requests, asyncObserved),
        ...asyncRecords,
        observedAt: asyncObserved,
      },
      {
        label: 'sync (step per tick)',
        summary: summarizeRun(sync.ticks, sync.requests, 0),
        detection: detect(sync.requests, sync.observedAt),
        ticks: sync.ticks,
        requests: sync.requests,
        observedAt: sync.observedAt,
      },
    ],
    sceneChanges,
    sceneAt,
  };
}
