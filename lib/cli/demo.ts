/**
 * `smolvla-node demo`: the real-time control loop on the built-in default. A simulated robot (the
 * synthetic camera whose scene changes at known ticks, a moving target, joints following the
 * actions) runs at --fps; a small built-in SmolVLA (random weights from a seed; nothing is
 * downloaded) computes chunks. The demo calibrates the CLS threshold on this model, runs the
 * asynchronous ControlRuntime (the default) and the synchronous loop (one PolicyServer step per
 * control step, the robot waiting), prints both loops' table and the line
 * `idle ticks: async A % vs sync S %`, and writes an HTML report.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { SmolVLAPolicy } from '../policy';
import { AGGREGATE_NAMES, calibratePolicy, compareLoops, formatRunTable, realtimeReportHtml, SimRobot, type AggregateName, type RequestRecord } from '../serving';
import { buildInfo, setNumThreads } from '../runtime';
import { byteTokenizer } from '../train/byteTokenizer';
import { tinyConfig, TINY_CAMERA } from '../train/presets';
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
  { name: 'seed', type: 'int', default: 0, help: 'model weights and camera noise' },
  { name: 'threads', type: 'int', default: 2, help: 'libtorch threads' },
  { name: 'out', type: 'string', default: 'smolvla-demo-report.html', help: 'HTML report path' },
  { name: 'task', type: 'string', default: 'stack the blocks', help: 'the language instruction' },
];

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
  const policy = await SmolVLAPolicy.create(tinyConfig(), { seed, tokenizer: byteTokenizer() });
  const { parameters } = await policy.model.info();
  out(`built-in model: ${(parameters / 1e6).toFixed(2)} M parameters (random weights from seed ${seed}), chunk ${policy.config.chunkSize}, ${policy.config.numSteps} denoising steps`);

  const robotOptions = { camera: TINY_CAMERA, sceneEvery, seed, task: flag<string>('task') };
  // Nothing trains CLS token 0 at step t to match token 1 at step t-1: find the threshold that
  // separates unchanged from changed scenes for this model first (frames of scenes the runs do not show).
  const probe = new SimRobot({ ...robotOptions, sceneEvery: 4, seed: seed + 1000 });
  const frames = Array.from({ length: 48 }, () => {
    const o = probe.observe();
    probe.idle();
    return o;
  });
  const unchanged = [0, 1, 2, 3].map((s) => frames.slice(s * 8 + 4 * (s % 2), s * 8 + 4 * (s % 2) + 4));
  const changed = Array.from({ length: 6 }, (_, k) => [frames[k * 4 + 3]!, frames[k * 4 + 4]!]);
  const calibration = await calibratePolicy(policy, { unchanged, changed });
  policy.clsThreshold = calibration.threshold;
  out(
    `calibrated threshold ${calibration.threshold.toFixed(4)} (balanced accuracy ${(100 * calibration.balancedAccuracy).toFixed(0)} %, ` +
      `false hits ${(100 * calibration.falseHitRate).toFixed(0)} %, false misses ${(100 * calibration.falseMissRate).toFixed(0)} %)`,
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
  const report = path.resolve(flag<string>('out'));
  await fs.promises.writeFile(
    report,
    realtimeReportHtml(runs, {
      title: 'smolvla-node demo: real-time control, asynchronous vs synchronous',
      sceneChanges: changes,
      threshold: calibration.threshold,
      notes: [
        `Built-in model with random weights from seed ${seed}; CLS threshold calibrated on it: ${calibration.threshold.toFixed(4)} ` +
          `(balanced accuracy ${(100 * calibration.balancedAccuracy).toFixed(0)} %). With random weights the similarity separates scenes only by chance.`,
        `${fps} Hz, scene change every ${sceneEvery} ticks, chunk_size_threshold ${g}, aggregate ${aggregate}, hit mode ${hitMode}, reuse ${flag<number>('reuse_steps')} steps.`,
      ],
    }),
  );
  out(`report: ${report}`);
  out(`idle ticks: async ${asyncRun.summary.idlePercent.toFixed(1)} % vs sync ${syncRun.summary.idlePercent.toFixed(1)} %`);
  return 0;
}
