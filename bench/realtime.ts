/**
 * The real-time table for the full-size model (random weights, 512x512 camera, chunk 50, 10
 * denoising steps): the synchronous loop (one PolicyServer step per control step, the robot waiting)
 * against the asynchronous ControlRuntime, on the simulated robot at 30 Hz. `npm run bench` runs it
 * after the per-chunk timings; alone: `npm run bench -- --only realtime [--ticks N] [--fps F]`.
 * The threshold is the config's (random weights: the decisions are not meaningful, the timings are).
 */
import { SmolVLAPolicy, type SmolVLAConfig } from '../lib/index';
import { compareLoops, formatRunTable } from '../lib/serving';

export interface RealtimeBenchOptions {
  /** The full-size configuration (bench/run.ts configFor('full')). */
  config: SmolVLAConfig;
  ticks: number;
  fps: number;
}

export async function realtimeBench(o: RealtimeBenchOptions, log: (line: string) => void): Promise<void> {
  log(`real-time loops, full-size model (random weights), ${o.fps} Hz, ${o.ticks} ticks each: creating the model...`);
  const policy = await SmolVLAPolicy.create(o.config, { seed: 0 });
  const { runs } = await compareLoops(policy, {
    robot: { camera: 'observation.images.top', width: 640, height: 480, sceneEvery: Math.max(2, Math.round(o.ticks / 3)), tokens: [1, 2, 3, 4, 5, 6, 7, 8] },
    ticks: o.ticks,
    fps: o.fps,
    chunkSizeThreshold: 0.5,
    aggregate: 'weighted_average',
    hitMode: 'refine',
    reuseSteps: 2,
    k: Math.round(o.fps),
  });
  for (const line of formatRunTable(runs)) log(line);
  log(`idle ticks: async ${runs[0].summary.idlePercent.toFixed(1)} % vs sync ${runs[1].summary.idlePercent.toFixed(1)} %`);
}
