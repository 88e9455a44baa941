/**
 * `smolvla-node demo`: the main job on the built-in default. A robot control loop drives a small
 * built-in SmolVLA (random weights from a seed; nothing is downloaded) with a synthetic camera
 * whose scene changes at known steps. It calibrates the CLS threshold on this model, then serves
 * every control step through the PolicyServer (miss / hit-skip / hit-refine / reuse), printing the
 * similarity and cache decision per step, the final statistics, and an HTML report.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { SmolVLAPolicy, type RobotObservation } from '../policy';
import { calibratePolicy, PolicyServer, servingReportHtml, type KindSummary } from '../serving';
import { buildInfo, setNumThreads } from '../runtime';
import { byteTokenizer } from '../train/byteTokenizer';
import { tinyConfig, TINY_CAMERA } from '../train/presets';
import { flagValue, formatFlagHelp, parseFlags, type FlagSpec } from './flags';
import type { CliIO } from './progress';
import { sceneCamera } from '../data/scene';
import { SmolVLAError } from '../errors';

const FLAGS: readonly FlagSpec[] = [
  { name: 'steps', type: 'int', default: 48, help: 'control steps to run' },
  { name: 'scene_every', type: 'int', default: 12, help: 'the scene changes every this many steps' },
  { name: 'hit_mode', type: 'string', default: 'refine', help: "what a cache hit does: 'skip' (keep the queued chunk) or 'refine' (one delta-expert step on it)" },
  { name: 'reuse_steps', type: 'int', default: 2, help: 'calls after a hit that also skip the prefix pass' },
  { name: 'adaptive', type: 'bool', default: false, help: 'let the adaptive controller move the threshold' },
  { name: 'seed', type: 'int', default: 0, help: 'model weights and camera noise' },
  { name: 'threads', type: 'int', default: 2, help: 'libtorch threads' },
  { name: 'out', type: 'string', default: 'smolvla-demo-report.html', help: 'HTML report path' },
  { name: 'task', type: 'string', default: 'stack the blocks', help: 'the language instruction' },
];

export function demoHelp(): string {
  return `usage: smolvla-node demo [--flag=value ...]\n\n${formatFlagHelp([{ title: 'demo flags', specs: FLAGS }])}`;
}

export async function runDemo(argv: readonly string[], io: CliIO): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    io.stdout.write(demoHelp());
    return 0;
  }
  const parsed = parseFlags(argv, FLAGS);
  const flag = <T>(name: string): T => flagValue<T>(parsed.values, FLAGS, name);
  const steps = flag<number>('steps');
  const sceneEvery = flag<number>('scene_every');
  const hitMode = flag<string>('hit_mode');
  if (hitMode !== 'skip' && hitMode !== 'refine') throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `--hit_mode: expected 'skip' or 'refine', got '${hitMode}'`);
  if (steps < 2 || sceneEvery < 2) throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', '--steps and --scene_every must be at least 2');
  setNumThreads(flag<number>('threads'));
  const out = (line: string) => io.stdout.write(`${line}\n`);

  const info = buildInfo();
  out(`smolvla-node demo: libtorch ${info.torchVersion} (${info.torchSource}), ${flag<number>('threads')} threads`);
  const policy = await SmolVLAPolicy.create(tinyConfig(), { seed: flag<number>('seed'), tokenizer: byteTokenizer() });
  const { parameters } = await policy.model.info();
  out(`built-in model: ${(parameters / 1e6).toFixed(2)} M parameters (random weights from seed ${flag<number>('seed')}), chunk ${policy.config.chunkSize}, ${policy.config.numSteps} denoising steps`);

  const camera = sceneCamera(64, 64, flag<number>('seed'));
  const task = flag<string>('task');
  const observation = (scene: number, step: number): RobotObservation => ({
    [TINY_CAMERA]: camera.frame(scene, step),
    'observation.state': Float32Array.from({ length: 6 }, (_, i) => Math.sin(step * 0.1 + i)),
    task,
  });

  // Nothing trains CLS token 0 at step t to match token 1 at step t-1: find the
  // threshold that separates unchanged from changed scenes for this model first.
  const unchanged = [100, 101, 102, 103].map((s) => [0, 1, 2, 3].map((t) => observation(s, t)));
  const changed = [0, 1, 2, 3, 4, 5].map((k) => [observation(200 + k, 0), observation(300 + k, 1)]);
  const calibration = await calibratePolicy(policy, { unchanged, changed });
  policy.clsThreshold = calibration.threshold;
  out(
    `calibrated threshold ${calibration.threshold.toFixed(4)} (balanced accuracy ${(100 * calibration.balancedAccuracy).toFixed(0)} %, ` +
      `false hits ${(100 * calibration.falseHitRate).toFixed(0)} %, false misses ${(100 * calibration.falseMissRate).toFixed(0)} %; ` +
      `unchanged mean ${calibration.unchanged.mean.toFixed(4)}, changed mean ${calibration.changed.mean.toFixed(4)})`,
  );

  const server = new PolicyServer(policy, { hitMode, reuseSteps: flag<number>('reuse_steps'), adaptive: flag<boolean>('adaptive') });
  const sceneChanges: number[] = [];
  out('step  scene  decision     similarity  threshold  ms     action[0]');
  for (let step = 0; step < steps; step++) {
    const scene = Math.floor(step / sceneEvery);
    const changedNow = step > 0 && step % sceneEvery === 0;
    if (changedNow) sceneChanges.push(step);
    const t0 = performance.now();
    const r = await server.step(observation(scene, step));
    const ms = performance.now() - t0;
    const sim = r.similarity ? r.similarity.mean.toFixed(4) : '   -  ';
    out(
      `${String(step).padStart(4)}  ${String(scene).padStart(4)}${changedNow ? '*' : ' '} ${r.decision.kind.padEnd(11)}  ${sim.padStart(10)}  ${r.threshold.toFixed(4).padStart(9)}  ${ms.toFixed(0).padStart(5)}  ${r.actions[0]![0]!.toFixed(3)}`,
    );
  }
  const summary = server.stats.summary();
  out('');
  out(`calls ${summary.steps}: ${Object.entries(summary.byKind).map(([k, v]: [string, KindSummary]) => `${k} ${v.count}${v.meanMs !== null ? ` (${v.meanMs.toFixed(0)} ms)` : ''}`).join(', ')}`);
  out(`similarity checks ${summary.checks}: cached ${summary.cached}, not cached ${summary.notCached}, hit rate ${summary.hitRate === null ? '-' : (100 * summary.hitRate).toFixed(0) + ' %'}`);
  out(`misses by reason: ${Object.entries(summary.missReasons).map(([k, v]) => `${k} ${v}`).join(', ')}; scene changes at steps ${sceneChanges.join(', ')}`);
  const missMs = summary.byKind.miss.meanMs;
  if (missMs !== null) {
    const spent = Object.values(summary.byKind).reduce((a: number, k: KindSummary) => a + k.count * (k.meanMs ?? 0), 0);
    out(`time: ${spent.toFixed(0)} ms served vs ${(missMs * summary.steps).toFixed(0)} ms if every call were a full chunk (${(100 * (1 - spent / (missMs * summary.steps))).toFixed(0)} % saved)`);
  }
  const report = path.resolve(flag<string>('out'));
  await fs.promises.writeFile(
    report,
    servingReportHtml(server.stats.snapshot(), {
      title: 'smolvla-node demo: CLS similarity and cache decisions',
      sceneChanges,
      notes: [
        `Built-in model with random weights; threshold calibrated on this model: ${calibration.threshold.toFixed(4)}.`,
        `Hit mode ${hitMode}, reuse steps ${flag<number>('reuse_steps')}. The rule is similarity > threshold -> cache (a lower threshold caches more).`,
      ],
    }),
  );
  out(`report: ${report}`);
  await server.dispose();
  return 0;
}
