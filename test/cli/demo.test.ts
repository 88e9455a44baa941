/**
 * `smolvla-node demo` and its built-in model: the shipped checkpoint (assets/demo-model) is the demo
 * preset trained on the simulator's scenes and separates the demo's scene changes; the demo loads it by
 * default and keeps random weights behind --random.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { runDemo } from '../../lib/cli/demo';
import { DEMO_MODEL_DIR, loadDemoModel } from '../../lib/cli/demoModel';
import { runServe } from '../../lib/cli/serve';
import { configToJson, readConfig } from '../../lib/config';
import { sequenceSimilarities } from '../../lib/serving';
import { SimRobot } from '../../lib/serving/sim';
import { demoConfig, TINY_CAMERA } from '../../lib/train/presets';
import { captureIO, tempDir } from '../train/helpers';

/** Frames of the demo's camera: `scenes` scenes, `perScene` frames 5 ticks apart in each (the target moving). */
function demoFrames(seed: number, scenes: number, perScene: number): { frames: unknown[]; scene: number[] } {
  const robot = new SimRobot({ camera: TINY_CAMERA, sceneEvery: 5 * perScene, seed });
  const frames: unknown[] = [];
  const scene: number[] = [];
  while (robot.tick < 5 * perScene * scenes) {
    scene.push(robot.sceneAt(robot.tick));
    frames.push(robot.observe());
    for (let k = 0; k < 5; k++) robot.idle();
  }
  return { frames, scene };
}

describe('the built-in demo model', () => {
  test('assets/demo-model holds the demo preset (only the schedule differs: the train command scales it to the run)', async () => {
    const saved = configToJson(await readConfig(DEMO_MODEL_DIR));
    const preset = configToJson(demoConfig());
    for (const key of ['scheduler_warmup_steps', 'scheduler_decay_steps']) {
      delete saved[key];
      delete preset[key];
    }
    expect(saved).toEqual(preset);
    for (const f of ['model.safetensors', 'training_report.html', 'metrics.jsonl']) expect(fs.existsSync(path.join(DEMO_MODEL_DIR, f))).toBe(true);
  });

  test("the trained checkpoint's CLS similarity separates every scene change of the demo's cameras from every unchanged pair", async () => {
    const { policy } = await loadDemoModel({ random: false, seed: 0 });
    const within: number[] = [];
    const across: number[] = [];
    // Seed 0 is the demo's camera, 1000 the one its calibration probes.
    for (const seed of [0, 1000]) {
      const { frames, scene } = demoFrames(seed, 8, 3);
      const sims = await sequenceSimilarities(policy, frames);
      sims.forEach((s, i) => (scene[i + 1] === scene[i] ? within : across).push(s));
    }
    expect([within.length, across.length]).toEqual([32, 14]);
    expect(Math.min(...within)).toBeGreaterThan(Math.max(...across));
    policy.dispose();
  });
});

describe('smolvla-node demo', () => {
  test('loads the trained checkpoint by default and says so first; runs both loops and ends with the idle-ticks line', async () => {
    const c = captureIO();
    const report = path.join(tempDir('demo'), 'report.html');
    expect(await runDemo(['--ticks=40', '--scene_every=20', `--out=${report}`], c.io)).toBe(0);
    const lines = c.out().trim().split('\n');
    expect(lines[1]).toMatch(/^built-in model: trained checkpoint assets[/\\]demo-model, 0\.\d\d M parameters, chunk 20, 10 denoising steps$/);
    // The probe's 24 scenes are separated perfectly by the trained similarity.
    expect(lines[2]).toMatch(/^calibrated threshold 0\.\d{4} on 24 probe scenes \(48 unchanged, 23 changed pairs\): balanced accuracy 100 %, false hits 0 %, false misses 0 %$/);
    expect(lines[lines.length - 1]).toMatch(/^idle ticks: async \d+\.\d % vs sync \d+\.\d %$/);
    expect(fs.readFileSync(report, 'utf8')).toContain('trained checkpoint assets');
  });

  test('--random keeps the random-weight path (same architecture); --random with --policy.path is refused', async () => {
    const c = captureIO();
    const report = path.join(tempDir('demo-random'), 'report.html');
    expect(await runDemo(['--random', '--seed=3', '--ticks=20', '--scene_every=10', `--out=${report}`], c.io)).toBe(0);
    expect(c.out().split('\n')[1]).toMatch(/^built-in model: random weights from seed 3 \(--random\), 0\.\d\d M parameters, chunk 20, 10 denoising steps$/);
    expect(fs.readFileSync(report, 'utf8')).toContain('With random weights the similarity separates scenes only by chance.');
    await expect(runDemo(['--random', '--policy.path=x'], captureIO().io)).rejects.toThrow('--random and --policy.path: give one of them');
  });

  test('a missing checkpoint says how to regenerate it', async () => {
    await expect(loadDemoModel({ random: false, seed: 0, dir: tempDir('empty') })).rejects.toThrow("regenerate it with 'npm run train:demo-model'");
  });
});

describe('smolvla-node serve --policy.builtin', () => {
  test("'demo' serves the trained checkpoint; another name is refused, naming the choices", async () => {
    const c = captureIO();
    const stop = new AbortController();
    const done = runServe(['--policy.builtin=demo', '--port=0'], c.io, stop.signal);
    for (let i = 0; i < 200 && !c.out().includes(' on ws://'); i++) await new Promise((r) => setTimeout(r, 50));
    stop.abort();
    expect(await done).toBe(0);
    expect(c.out()).toMatch(/^smolvla-node serve: builtin:demo on ws:\/\/127\.0\.0\.1:\d+ \(libtorch [^;]+; chunk 20, action_dim 6\)$/m);
    await expect(runServe(['--policy.builtin=huge'], captureIO().io)).rejects.toThrow("--policy.builtin: expected 'demo' or 'tiny', got 'huge'");
  });
});
