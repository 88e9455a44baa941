/**
 * Crash safety and interruption with the real CLI in child processes: a process killed in the middle
 * of a save (SIGKILL between two file writes, or after the folder is in place but before `last`
 * moves) never leaves a checkpoint that loads wrong, and resuming reproduces the uninterrupted
 * losses; Ctrl-C (SIGINT) finishes the step, saves and exits with 130; SIGTERM (docker stop, Slurm,
 * timeout) does the same with 143, and the run resumes from that checkpoint.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { SmolVLAModel } from '../../lib/model';
import { CRASH_ENV } from '../../lib/train/checkpoint';
import { runCliChild, tempDir, trainRecords } from './helpers';

const RUN = ['--policy.preset=tiny', '--steps=4', '--batch_size=2', '--save_freq=2', '--log_freq=1', '--dataset.eval_split=0', '--seed=21'];

describe('a crash in the middle of a save', () => {
  test('leaves the previous checkpoint as `last`; resuming reproduces the straight run', async () => {
    const out = path.join(tempDir('crash'), 'run');
    const ck = path.join(out, 'checkpoints');
    const resume = ['--resume=true', `--config_path=${path.join(ck, 'last', 'pretrained_model', 'train_config.json')}`];

    // 1) killed after 3 of the step-4 checkpoint's files.
    const killed = await runCliChild([...RUN, `--output_dir=${out}`], { [CRASH_ENV]: '4:3' });
    expect({ signal: killed.signal, stderr: killed.stderr }).toEqual({ signal: 'SIGKILL', stderr: expect.any(String) });
    const entries = fs.readdirSync(ck).sort();
    expect(entries.filter((e) => !e.startsWith('.tmp-'))).toEqual(['000002', 'last']);
    expect(entries.some((e) => e.startsWith('.tmp-000004-'))).toBe(true);
    expect(fs.readlinkSync(path.join(ck, 'last'))).toBe('000002');
    const straight = trainRecords(path.join(out, 'metrics.jsonl'));
    expect([...straight.keys()]).toEqual([1, 2, 3, 4]);

    // 2) resumed, killed again once the new step-4 folder is in place but before `last` moved.
    const late = await runCliChild(resume, { [CRASH_ENV]: '4:renamed' });
    expect(late.signal).toBe('SIGKILL');
    expect(fs.readdirSync(ck).filter((e) => !e.startsWith('.')).sort()).toEqual(['000002', '000004', 'last']);
    expect(fs.readlinkSync(path.join(ck, 'last'))).toBe('000002');

    // 3) resumed from `last` (step 2) again: redoes steps 3-4 and replaces the step-4 folder.
    const done = await runCliChild(resume);
    expect({ code: done.code, stderr: done.stderr }).toEqual({ code: 0, stderr: expect.not.stringContaining('smolvla-node train:') });
    expect(done.stdout).toContain(`resuming from ${path.join(ck, '000002')} at step 2`);
    expect(fs.readdirSync(ck).sort()).toEqual(['000002', '000004', 'last']);
    expect(fs.readlinkSync(path.join(ck, 'last'))).toBe('000004');
    const after = trainRecords(path.join(out, 'metrics.jsonl'));
    expect([...after.keys()]).toEqual([1, 2, 3, 4]);
    for (const step of [1, 2, 3, 4]) {
      const a = after.get(step)!;
      const b = straight.get(step)!;
      expect({ step, loss: Math.abs(a.delta_loss! - b.delta_loss!) / Math.abs(b.delta_loss!) <= 1e-6 }).toEqual({ step, loss: true });
      expect(a.lr).toBe(b.lr);
    }
  });
});

describe('a crash before the first checkpoint', () => {
  test('is refused by --resume with the way out, and a fresh start clears the leftovers', async () => {
    const out = path.join(tempDir('early-crash'), 'run');
    const killed = await runCliChild([...RUN, `--output_dir=${out}`], { [CRASH_ENV]: '2:1' });
    expect(killed.signal).toBe('SIGKILL');
    expect(fs.readdirSync(out).sort()).toEqual(['checkpoints', 'metrics.jsonl']);

    const resumed = await runCliChild(['--resume=true', `--output_dir=${out}`]);
    expect(resumed.code).not.toBe(0);
    expect(resumed.stderr).toContain('has no checkpoint (its run stopped before the first one');
    expect(resumed.stderr).toContain('without --resume=true to start it over');

    const again = await runCliChild([...RUN, `--output_dir=${out}`]);
    expect({ code: again.code, stderr: again.stderr }).toEqual({ code: 0, stderr: expect.not.stringContaining('smolvla-node train:') });
    expect(again.stdout).toContain('left by a run that stopped before its first checkpoint');
    expect([...trainRecords(path.join(out, 'metrics.jsonl')).keys()]).toEqual([1, 2, 3, 4]);
    expect(fs.readlinkSync(path.join(out, 'checkpoints', 'last'))).toBe('000004');
  });
});
/** Runs a long tiny-model training in a child and sends `signal` once step 2 is reported. */
async function interrupted(signal: NodeJS.Signals, out: string) {
  let sent = false;
  return runCliChild(['--policy.preset=tiny', '--steps=1000', '--batch_size=2', '--log_freq=1', '--save_freq=1000', '--dataset.eval_split=0', `--output_dir=${out}`], {}, (text, child) => {
    if (!sent && text.includes('step 2/1000')) {
      sent = true;
      child.kill(signal);
    }
  });
}

/** The step a stopped run reports, and checks that `last` points at its checkpoint. */
function stoppedAt(stdout: string, word: string, out: string): number {
  const m = new RegExp(`${word} at step (\\d+); last checkpoint (\\S+);`).exec(stdout);
  expect(m).not.toBeNull();
  const step = Number(m![1]);
  expect(step).toBeGreaterThanOrEqual(2);
  const ck = path.join(out, 'checkpoints');
  expect(fs.readlinkSync(path.join(ck, 'last'))).toBe(String(step).padStart(6, '0'));
  expect(JSON.parse(fs.readFileSync(path.join(ck, 'last', 'training_state', 'training_step.json'), 'utf8'))).toMatchObject({ step });
  return step;
}

describe('Ctrl-C', () => {
  test('finishes the current step, saves a checkpoint and exits with 130', async () => {
    const out = path.join(tempDir('sigint'), 'run');
    const r = await interrupted('SIGINT', out);
    expect({ code: r.code, err: r.stderr }).toEqual({ code: 130, err: expect.stringContaining('interrupted (SIGINT): finishing the current step') });
    stoppedAt(r.stdout, 'interrupted', out);
  });
});

describe('SIGTERM', () => {
  test('finishes the step, leaves a loadable checkpoint and the report, exits with 143; --resume=true continues', async () => {
    const out = path.join(tempDir('sigterm'), 'run');
    const r = await interrupted('SIGTERM', out);
    expect({ code: r.code, err: r.stderr }).toEqual({ code: 143, err: expect.stringContaining('terminated (SIGTERM): finishing the current step') });
    const step = stoppedAt(r.stdout, 'terminated', out);
    expect(fs.existsSync(path.join(out, 'training_report.html'))).toBe(true);
    const pretrained = path.join(out, 'checkpoints', 'last', 'pretrained_model');
    const { model } = await SmolVLAModel.fromPretrained(pretrained);
    expect(model.config.trainDeltaExpert).toBe(true);

    const resumed = await runCliChild(['--resume=true', `--config_path=${path.join(pretrained, 'train_config.json')}`, `--steps=${step + 2}`]);
    expect({ code: resumed.code, err: resumed.stderr }).toEqual({ code: 0, err: expect.not.stringContaining('smolvla-node train:') });
    expect(resumed.stdout).toContain(`at step ${step}`);
    expect(fs.readlinkSync(path.join(out, 'checkpoints', 'last'))).toBe(String(step + 2).padStart(6, '0'));
  });
});
