/**
 * `npm run bench:distributed`: data-parallel scaling of `smolvla-node train` on this machine —
 * 1 process against N processes (Gloo over loopback), each process one libtorch thread and the same
 * per-process batch (so N processes train on N times the samples per update). Reports steps/s,
 * samples/s and the communication share of a step: the time a rank waits after backward for the
 * gradient all-reduce to finish (the part not hidden behind backward), over the step time.
 *
 * usage: npm run bench:distributed -- [--processes N] [--steps S] [--batch B] [--preset tiny|smolvla] [--json out.json]
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

interface Args {
  processes: number;
  steps: number;
  batch: number;
  preset: string;
  json?: string;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { processes: 2, steps: 12, batch: 4, preset: 'tiny' };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.split('=', 2) as [string, string | undefined];
    const value = inline ?? argv[++i];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (flag === '--processes') args.processes = Number(value);
    else if (flag === '--steps') args.steps = Number(value);
    else if (flag === '--batch') args.batch = Number(value);
    else if (flag === '--preset') args.preset = value;
    else if (flag === '--json') args.json = value;
    else throw new Error(`unknown argument ${argv[i]} (see the header of bench/distributed.ts)`);
  }
  if (!(args.processes >= 2 && args.steps >= 4 && args.batch >= 1)) throw new Error('--processes >= 2, --steps >= 4, --batch >= 1');
  return args;
}

interface Result {
  processes: number;
  globalBatch: number;
  stepsPerS: number;
  samplesPerS: number;
  /** Mean seconds per update waiting for gradients after backward (0 for one process). */
  commWaitS: number;
  commShare: number;
}

const WARMUP = 2;

function measure(a: Args, processes: number): Result {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'smolvla-bench-dist-'));
  try {
    const cli = path.join(__dirname, '..', 'lib', 'cli', 'main.js');
    const r = spawnSync(
      process.execPath,
      [cli, 'train', `--num_processes=${processes}`, '--num_threads=1', `--policy.preset=${a.preset}`, '--policy.train_delta_expert=false',
        `--batch_size=${a.batch}`, `--steps=${a.steps}`, '--log_freq=1', '--save_checkpoint=false', '--dataset.eval_split=0', `--output_dir=${path.join(out, 'run')}`],
      { encoding: 'utf8' },
    );
    if (r.status !== 0) throw new Error(`train with ${processes} process(es) failed:\n${r.stderr}`);
    const records = fs
      .readFileSync(path.join(out, 'run', 'metrics.jsonl'), 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as Record<string, number | string>)
      .filter((rec) => rec.kind === 'train' && (rec.step as number) > WARMUP);
    // log_freq=1: each record's steps_per_s is one update's rate.
    const seconds = records.reduce((s, rec) => s + 1 / (rec.steps_per_s as number), 0);
    const comm = records.reduce((s, rec) => s + ((rec.comm_wait_s as number | undefined) ?? 0), 0);
    const stepsPerS = records.length / seconds;
    return {
      processes,
      globalBatch: a.batch * processes,
      stepsPerS,
      samplesPerS: stepsPerS * a.batch * processes,
      commWaitS: comm / records.length,
      commShare: comm / seconds,
    };
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
}

function main(): void {
  const a = parseArgs(process.argv.slice(2));
  const results = [measure(a, 1), measure(a, a.processes)];
  const [one, many] = results as [Result, Result];
  console.log(`preset ${a.preset}, batch ${a.batch} per process, 1 thread per process, ${a.steps} steps (first ${WARMUP} not timed), ${os.availableParallelism()} cores`);
  console.log('processes  global batch  steps/s  samples/s  comm wait/step  comm share');
  for (const r of results) {
    console.log(
      `${String(r.processes).padStart(9)}  ${String(r.globalBatch).padStart(12)}  ${r.stepsPerS.toFixed(3).padStart(7)}  ${r.samplesPerS.toFixed(2).padStart(9)}  ${(r.commWaitS * 1000).toFixed(1).padStart(11)} ms  ${(r.commShare * 100).toFixed(1).padStart(9)}%`,
    );
  }
  console.log(`samples/s speed-up with ${a.processes} processes: ${(many.samplesPerS / one.samplesPerS).toFixed(2)}x`);
  if (a.json) fs.writeFileSync(a.json, `${JSON.stringify({ args: a, results }, null, 2)}\n`);
}

main();
