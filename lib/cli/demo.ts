/**
 * `smolvla-node demo`: the real-time control loop on the built-in default. A simulated robot (the
 * synthetic camera whose scene changes at known ticks, a moving target, joints following the
 * actions) runs at --fps; a small built-in SmolVLA computes chunks: the checkpoint the train command
 * trained on the simulator's scenes (assets/demo-model, `npm run train:demo-model`; nothing is
 * downloaded), or with --random the same architecture with random weights from a seed. The demo
 * calibrates the CLS threshold on this model, runs the asynchronous ControlRuntime (the default) and
 * the synchronous loop (one PolicyServer step per control step, the robot waiting), prints both
 * loops' table and the line `idle ticks: async A % vs sync S %`, and writes an HTML report.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import type { RobotObservation } from '../policy/inputs';
import { AGGREGATE_NAMES, calibrateThreshold, compareLoops, compareSeams, formatRunTable, formatSeamTable, realtimeReportHtml, seamTableRows, sequenceSimilarities, SimRobot, type AggregateName, type RequestRecord } from '../serving';
import { buildInfo, setNumThreads } from '../runtime';
import { TINY_CAMERA } from '../train/presets';
import { loadDemoModel } from './demoModel';
import { flagValue, formatFlagHelp, parseFlags, type FlagSpec } from './flags';
import type { CliIO } from './progress';
import { SmolVLAError } from '../errors';

const FLAGS: readonly FlagSpec[] = [
  { name: 'ticks', type: 'int', default: 240, help: 'control ticks each loop runs' },
  { name: 'fps', type: 'int', default: 30, help: 'control rate (ticks per second)' },
  { name: 'scene_every', type: 'int', default: 60, help: 'the scene changes every this many ticks' },
  { name: 'sync', type: 'bool', default: false, help: 'print the synchronous loop step by step (the asynchronous one runs too, for the comparison)' },
  { name: 'hit_mode', type: 'string', default: 'refine', help: "what a cache hit does: 'skip' (keep the queued chunk) or 'refine' (one delta-expert step on it)" },
  { name: 'reuse_steps', type: 'int', default: 2, help: 'control steps after a hit that may reuse its prefix cache' },
  { name: 'threshold_g', type: 'string', default: '0.5', help: 'chunk_size_threshold: ask for a chunk when queue / chunk <= this' },
  { name: 'aggregate', type: 'string', default: 'weighted_average', help: 'weighted_average, latest_only, average or conservative' },
  { name: 'detect_k', type: 'int', default: 15, help: 'a scene change counts as detected when flagged within this many ticks' },
  { name: 'random', type: 'bool', default: false, help: 'random weights from --seed instead of the trained checkpoint (same architecture)' },
  { name: 'policy.path', type: 'string', help: 'another checkpoint folder for the simulator (one 64x64 camera observation.images.top, 6-dimensional state); default the built-in trained one' },
  { name: 'seed', type: 'int', default: 0, help: 'camera noise and sampling noise (and the weights with --random)' },
  { name: 'threads', type: 'int', default: 2, help: 'libtorch threads' },
  { name: 'out', type: 'string', default: 'smolvla-demo-report.html', help: 'HTML report path' },
  { name: 'task', type: 'string', default: 'stack the blocks', help: 'the language instruction' },
];

/** The calibration probe: scenes, checks per scene and ticks between checks. */
const PROBE_SCENES = 24;
const PROBE_CHECKS = 3;
const PROBE_SPACING = 5;

export function demoHelp(): string {
  return `usage: smolvla-node demo [--flag=value ...]\n\n${formatFlagHelp([{ title: 'demo flags', specs: FLAGS }])}`;
}

function requestLine(r: RequestRecord, observedAt: number, sceneAt: (t: number) => number): string {
  const sim = r.similarity === null ? '   -  ' : r.similarity.toFixed(4);
  return `${String(observedAt).padStart(5)}  ${String(sceneAt(observedAt)).padStart(5)}  ${String(r.decision ?? r.outcome).padEnd(11)}  ${sim.padStart(10)}  ${(r.computeMs ?? 0).toFixed(0).padStart(6)}  ${String(r.actions).padStart(7)}`;
}

export async function runDemo(argv: readonly string[], io: CliIO): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    io.stdout.write(demoHelp());
    return 0;
  }
  const parsed = parseFlags(argv, FLAGS);
  const flag = <T>(name: string): T => flagValue<T>(parsed.values, FLAGS, name);
  const ticks = flag<number>('ticks');
  const fps = flag<number>('fps');
  const sceneEvery = flag<number>('scene_every');
  const hitMode = flag<string>('hit_mode');
  const g = Number(flag<string>('threshold_g'));
  if (hitMode !== 'skip' && hitMode !== 'refine') throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `--hit_mode: expected 'skip' or 'refine', got '${hitMode}'`);
  if (ticks < 2 || sceneEvery < 2 || fps < 1) throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', '--ticks and --scene_every must be at least 2, --fps at least 1');
  if (!(g >= 0 && g <= 1)) throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `--threshold_g: expected a number in [0, 1], got '${flag<string>('threshold_g')}'`);
  setNumThreads(flag<number>('threads'));
  const out = (line: string) => io.stdout.write(`${line}\n`);
  const seed = flag<number>('seed');

  const info = buildInfo();
  out(`smolvla-node demo: libtorch ${info.torchVersion} (${info.torchSource}), ${flag<number>('threads')} threads, ${fps} Hz, ${ticks} ticks per loop`);
  const dir = flag<string | undefined>('policy.path');
  const random = flag<boolean>('random');
  if (random && dir !== undefined) throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', '--random and --policy.path: give one of them (--random replaces the checkpoint by random weights)');
  const model = await loadDemoModel({ random, seed, ...(dir !== undefined ? { dir: path.resolve(dir) } : {}) });
  const { policy } = model;
  const { parameters } = await policy.model.info();
  out(`built-in model: ${model.description}, ${(parameters / 1e6).toFixed(2)} M parameters, chunk ${policy.config.chunkSize}, ${policy.config.numSteps} denoising steps`);

  const robotOptions = { camera: TINY_CAMERA, sceneEvery, seed, task: flag<string>('task') };
  // Nothing trains CLS token 0 at step t to match token 1 at step t-1 directly: find the threshold
  // that separates unchanged from changed scenes for this model first, on a probe robot showing other
  // scenes than the runs: PROBE_SCENES scenes observed every PROBE_SPACING ticks (about as often as
  // the loops check), every consecutive pair labelled unchanged or changed by the simulator.
  const probe = new SimRobot({ ...robotOptions, sceneEvery: PROBE_SPACING * PROBE_CHECKS, seed: seed + 1000 });
  const frames: RobotObservation[] = [];
  const probeScenes: number[] = [];
  while (probe.tick < PROBE_SCENES * PROBE_SPACING * PROBE_CHECKS) {
    probeScenes.push(probe.sceneAt(probe.tick));
    frames.push(probe.observe());
    for (let k = 0; k < PROBE_SPACING; k++) probe.idle();
  }
  const pairs = { unchanged: [] as number[], changed: [] as number[] };
  (await sequenceSimilarities(policy, frames)).forEach((s, i) => (probeScenes[i + 1] === probeScenes[i] ? pairs.unchanged : pairs.changed).push(s));
  const calibration = calibrateThreshold(pairs.unchanged, pairs.changed);
  policy.clsThreshold = calibration.threshold;
  out(
    `calibrated threshold ${calibration.threshold.toFixed(4)} on ${PROBE_SCENES} probe scenes (${pairs.unchanged.length} unchanged, ${pairs.changed.length} changed pairs): ` +
      `balanced accuracy ${(100 * calibration.balancedAccuracy).toFixed(0)} %, false hits ${(100 * calibration.falseHitRate).toFixed(0)} %, false misses ${(100 * calibration.falseMissRate).toFixed(0)} %`,
  );

  const aggregate = flag<string>('aggregate');
  if (!(AGGREGATE_NAMES as readonly string[]).includes(aggregate)) throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `--aggregate: expected one of ${AGGREGATE_NAMES.join(', ')}, got '${aggregate}'`);
  const { runs, sceneChanges: changes, sceneAt } = await compareLoops(policy, {
    robot: robotOptions,
    ticks,
    fps,
    chunkSizeThreshold: g,
    aggregate: aggregate as AggregateName,
    hitMode,
    reuseSteps: flag<number>('reuse_steps'),
    k: flag<number>('detect_k'),
  });
  const [asyncRun, syncRun] = runs;
  const shown = flag<boolean>('sync') ? syncRun : asyncRun;
  out('');
  out(`${shown.label}: requests (scene changes at ticks ${changes.join(', ') || 'none'})`);
  out(' tick  scene  decision     similarity      ms  actions');
  shown.requests.forEach((r, i) => out(requestLine(r, shown.observedAt[i]!, sceneAt)));
  out('');
  for (const line of formatRunTable(runs)) out(line);
  out('');
  out('chunk seams (asynchronous loop): aggregation vs delta refinement vs real-time chunking');
  const seams = await compareSeams(policy, { robot: robotOptions, ticks, fps, chunkSizeThreshold: g, aggregate: aggregate as AggregateName });
  for (const line of formatSeamTable(seams)) out(line);
  const report = path.resolve(flag<string>('out'));
  await fs.promises.writeFile(
    report,
    realtimeReportHtml(runs, {
      title: 'smolvla-node demo: real-time control, asynchronous vs synchronous',
      sceneChanges: changes,
      threshold: calibration.threshold,
      tables: [{ caption: 'Chunk seams: aggregation, delta refinement, real-time chunking (docs/rtc.md)', rows: seamTableRows(seams) }],
      notes: [
        `Built-in model: ${model.description}; CLS threshold calibrated on it: ${calibration.threshold.toFixed(4)} ` +
          `(balanced accuracy ${(100 * calibration.balancedAccuracy).toFixed(0)} %, false hits ${(100 * calibration.falseHitRate).toFixed(0)} %). ` +
          (model.trained
            ? 'Its CLS head and delta expert were trained on the simulator\'s scenes (other scenes than these), so the similarity drops at scene changes.'
            : 'With random weights the similarity separates scenes only by chance.'),
        `${fps} Hz, scene change every ${sceneEvery} ticks, chunk_size_threshold ${g}, aggregate ${aggregate}, hit mode ${hitMode}, reuse ${flag<number>('reuse_steps')} steps.`,
      ],
    }),
  );
  out(`report: ${report}`);
  out(`idle ticks: async ${asyncRun.summary.idlePercent.toFixed(1)} % vs sync ${syncRun.summary.idlePercent.toFixed(1)} %`);
  return 0;
}
