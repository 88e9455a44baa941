/**
 * The real-time table for the full-size model (random weights, 512x512 camera, chunk 50, 10
 * denoising steps): the synchronous loop (one PolicyServer step per control step, the robot waiting)
 * against the asynchronous ControlRuntime, on the simulated robot at 30 Hz. `npm run bench` runs it
 * after the per-chunk timings; alone: `npm run bench -- --only realtime [--ticks N] [--dtype D]`.
 * The threshold is the config's (random weights: the decisions are not meaningful, the timings are).
 * Then the chunk-seam table (aggregation, delta refinement, RTC) and the extra cost of RTC guidance
 * per chunk (sampling from one cache: plain, stop-gradient guidance, VJP guidance).
 *
 * The run is as long as the model needs: a table in which fewer than a few chunks arrive says
 * nothing about seams or idle time, so by default each loop lasts about CHUNKS_PER_RUN chunk times
 * (at least 300 ticks), measured on this machine before the loops start.
 */
import { SmolVLAPolicy, Tensor, type RtcOptions, type SmolVLAConfig, type SmolVLAModel } from '../lib/index';
import { compareLoops, compareSeams, formatRunTable, formatSeamTable } from '../lib/serving';
import { syntheticObservation } from './observation';

export interface RealtimeBenchOptions {
  /** The full-size configuration (bench/run.ts configFor('full')). */
  config: SmolVLAConfig;
  dtype: 'float32' | 'bfloat16';
  /** Ticks of each loop; default: CHUNKS_PER_RUN chunk times, within [300, 9000]. */
  ticks?: number;
  fps: number;
}

const CHUNKS_PER_RUN = 12;

export async function realtimeBench(o: RealtimeBenchOptions, log: (line: string) => void): Promise<void> {
  log(`real-time loops, full-size model (random weights, ${o.dtype}), ${o.fps} Hz: creating the model...`);
  const policy = await SmolVLAPolicy.create(o.config, { seed: 0, dtype: o.dtype });
  const chunkMs = await chunkTime(policy.model);
  const auto = Math.min(9000, Math.max(300, Math.ceil((o.fps * chunkMs * CHUNKS_PER_RUN) / 1000)));
  const ticks = o.ticks ?? auto;
  const covered = (ticks * 1000) / o.fps / chunkMs;
  log(
    `one chunk (prefix + ${o.config.numSteps} steps) takes ${chunkMs.toFixed(0)} ms here = ${((chunkMs * o.fps) / 1000).toFixed(1)} ticks` +
      ` (a chunk holds ${o.config.chunkSize} actions); ${ticks} ticks per loop (${(ticks / o.fps).toFixed(0)} s of robot time, ~${covered.toFixed(1)} chunk times)`,
  );
  // Start the next request early enough that it can land before the queue runs dry: LeRobot's
  // default g = 0.5 suits a policy whose chunk computes in under half a chunk's execution time;
  // a slower one needs g near 1 (and still idles when a chunk takes longer than it lasts).
  const chunkTicks = (chunkMs * o.fps) / 1000;
  const g = Math.min(1, Math.max(0.5, Math.ceil((chunkTicks / o.config.chunkSize + 0.1) * 10) / 10));
  log(`chunk_size_threshold g = ${g} (${chunkTicks.toFixed(0)} ticks of compute per ${o.config.chunkSize}-action chunk${chunkTicks > o.config.chunkSize ? ': slower than real time, so some idle ticks are unavoidable' : ''})`);
  if (covered < 3) log(`warning: fewer than 3 chunk times per loop: too few chunks arrive for the tables below to mean much (--ticks ${auto} would give ${CHUNKS_PER_RUN})`);
  const robot = { camera: 'observation.images.top', width: 640, height: 480, sceneEvery: Math.max(2, Math.round(ticks / 3)), tokens: [1, 2, 3, 4, 5, 6, 7, 8] };
  const { runs } = await compareLoops(policy, {
    robot,
    ticks,
    fps: o.fps,
    chunkSizeThreshold: g,
    aggregate: 'weighted_average',
    hitMode: 'refine',
    reuseSteps: 2,
    k: Math.round(o.fps),
  });
  for (const line of formatRunTable(runs)) log(line);
  log(`idle ticks: async ${runs[0].summary.idlePercent.toFixed(1)} % vs sync ${runs[1].summary.idlePercent.toFixed(1)} %`);
  log('');
  log(`chunk seams, full-size model (${o.dtype}): aggregation vs delta refinement vs real-time chunking`);
  const seams = await compareSeams(policy, { robot, ticks, fps: o.fps, chunkSizeThreshold: g });
  for (const line of formatSeamTable(seams)) log(line);
  log('');
  for (const line of await guidanceCost(policy.model, o.config.chunkSize, o.config.maxActionDim)) log(line);
  policy.dispose();
}

/** One chunk's time from an observation (prefix + sampling), after a warm-up chunk (route probes, packing). */
async function chunkTime(model: SmolVLAModel): Promise<number> {
  const obs = syntheticObservation(model.config);
  let ms = 0;
  for (let r = 0; r < 2; r++) {
    const t0 = performance.now();
    const cache = await model.prefix(obs);
    const { actions } = await model.sample(cache);
    ms = performance.now() - t0;
    actions.dispose();
    cache.dispose();
  }
  return ms;
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
