/**
 * The real-time table for the full-size model (random weights, 512x512 camera, chunk 50, 10
 * denoising steps): the synchronous loop (one PolicyServer step per control step, the robot waiting)
 * against the asynchronous ControlRuntime, on the simulated robot at 30 Hz. `npm run bench` runs it
 * after the per-chunk timings; alone: `npm run bench -- --only realtime [--ticks N] [--fps F]`.
 * The threshold is the config's (random weights: the decisions are not meaningful, the timings are).
 * Then the chunk-seam table (aggregation, delta refinement, RTC) and the extra cost of RTC guidance
 * per chunk (sampling from one cache: plain, stop-gradient guidance, VJP guidance).
 */
import { SmolVLAPolicy, Tensor, type RtcOptions, type SmolVLAConfig, type SmolVLAModel } from '../lib/index';
import { compareLoops, compareSeams, formatRunTable, formatSeamTable } from '../lib/serving';
import { syntheticObservation } from './observation';

export interface RealtimeBenchOptions {
  /** The full-size configuration (bench/run.ts configFor('full')). */
  config: SmolVLAConfig;
  ticks: number;
  fps: number;
}

export async function realtimeBench(o: RealtimeBenchOptions, log: (line: string) => void): Promise<void> {
  log(`real-time loops, full-size model (random weights), ${o.fps} Hz, ${o.ticks} ticks each: creating the model...`);
  const policy = await SmolVLAPolicy.create(o.config, { seed: 0 });
  const robot = { camera: 'observation.images.top', width: 640, height: 480, sceneEvery: Math.max(2, Math.round(o.ticks / 3)), tokens: [1, 2, 3, 4, 5, 6, 7, 8] };
  const { runs } = await compareLoops(policy, {
    robot,
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
  log('');
  log('chunk seams, full-size model: aggregation vs delta refinement vs real-time chunking');
  const seams = await compareSeams(policy, { robot, ticks: o.ticks, fps: o.fps, chunkSizeThreshold: 0.5 });
  for (const line of formatSeamTable(seams)) log(line);
  log('');
  for (const line of await guidanceCost(policy.model, o.config.chunkSize, o.config.maxActionDim)) log(line);
}

/** Median ms per chunk from one cache: plain sampling, guided with stop-gradient, guided with the VJP. */
export async function guidanceCost(model: SmolVLAModel, chunk: number, width: number, repeats = 3): Promise<string[]> {
  const obs = syntheticObservation(model.config);
  const cache = await model.prefix(obs);
  const leftover = Tensor.from(new Float32Array(chunk * width).fill(0.1), [1, chunk, width]);
  const time = async (rtc?: RtcOptions): Promise<number> => {
    const ms: number[] = [];
    for (let i = 0; i < repeats; i++) {
      const t0 = performance.now();
      const r = await model.sample(cache, rtc ? { rtc } : {});
      ms.push(performance.now() - t0);
      r.actions.dispose();
    }
    return ms.sort((a, b) => a - b)[Math.floor(ms.length / 2)]!;
  };
  const plain = await time();
  const stop = await time({ leftover, inferenceDelay: 3, stopGradient: true });
  const vjp = await time({ leftover, inferenceDelay: 3 });
  cache.dispose();
  leftover.dispose();
  return [
    `RTC guidance cost per chunk (${model.config.numSteps} Euler steps from one cache, median of ${repeats}):`,
    `  plain ${plain.toFixed(1)} ms, stop-gradient ${stop.toFixed(1)} ms (+${(stop - plain).toFixed(1)}), VJP ${vjp.toFixed(1)} ms (+${(vjp - plain).toFixed(1)}, x${(vjp / plain).toFixed(2)})`,
  ];
}
