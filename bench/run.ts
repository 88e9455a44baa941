/**
 * `npm run bench`: one chunk of SmolVLA (full-size shape with random weights, and a small config)
 * timed here and with the PyTorch reference (test/reference) on the same work and thread count, in
 * the same run, next to the machine's matrix roof measured in-process.
 *
 * Then the real-time table (bench/realtime.ts): sync vs async control loops, full-size model, 30 Hz.
 *
 * Then the cost of serving over the network (bench/serving.ts): the WebSocket protocol's per-call
 * overhead versus in-process, for the tiny demo model and the full-size shape, and the throughput of
 * 4 concurrent clients.
 *
 * usage: npm run bench -- [--threads N] [--repeats R] [--dtype float32|bfloat16 (default both)] [--only full|small|realtime] [--ticks N (default: enough for 12 chunks)] [--json out.json]
 *                          [--serving include|skip|only] [--serving_size tiny|full|both] [--device cpu|cuda:N]
 * On a GPU (--device cuda:N) both sides run there and only whole chunks are timed (kernels run
 * asynchronously, so a stage's wall time is not its GPU time); ours includes downloading the
 * actions, the reference synchronises. The reference runs bfloat16 under torch.autocast and tries
 * torch.compile (falling back to eager, and saying so, where compiling fails).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { defaultConfig, gemmRoutes, parseConfig, setGemmRoute, setNumThreads, SmolVLAModel, type SmolVLAConfig } from '../lib/index';
import { chunkFlops } from './flops';
import { percentOfRoof, RoofTracker } from './roof';
import { syntheticObservation } from './observation';
import { realtimeBench } from './realtime';
import { servingBench } from './serving';

interface Args {
  threads: number;
  repeats: number;
  /** Both unless --dtype picks one. */
  dtypes: Array<'float32' | 'bfloat16'>;
  only?: string;
  json?: string;
  /** Ticks of each real-time loop; default: enough for about 12 chunks at the measured chunk time. */
  ticks?: number;
  /** --dtype given: the real-time loops run in it. */
  dtypeGiven: boolean;
  serving: 'include' | 'skip' | 'only';
  servingSize: 'tiny' | 'full' | 'both';
  device: string;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { threads: Math.max(1, require('node:os').availableParallelism?.() ?? 2), repeats: 3, dtypes: ['float32', 'bfloat16'], dtypeGiven: false, serving: 'include', servingSize: 'both', device: 'cpu' };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.split('=', 2) as [string, string | undefined];
    const value = inline ?? argv[++i];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (flag === '--threads') args.threads = Number(value);
    else if (flag === '--repeats') args.repeats = Number(value);
    else if (flag === '--dtype' && (value === 'float32' || value === 'bfloat16')) {
      args.dtypes = [value];
      args.dtypeGiven = true;
    }
    else if (flag === '--only') args.only = value;
    else if (flag === '--json') args.json = value;
    else if (flag === '--ticks') {
      args.ticks = Number(value);
      if (!Number.isInteger(args.ticks) || args.ticks < 1) throw new Error(`--ticks needs a positive integer, got ${value}`);
    }
    else if (flag === '--device' && value) args.device = value;
    else if (flag === '--serving' && (value === 'include' || value === 'skip' || value === 'only')) args.serving = value;
    else if (flag === '--serving_size' && (value === 'tiny' || value === 'full' || value === 'both')) args.servingSize = value;
    else throw new Error(`unknown or invalid argument ${argv[i]} (see the header of bench/run.ts)`);
  }
  return args;
}

const features = {
  inputFeatures: {
    'observation.images.top': { type: 'VISUAL' as const, shape: [3, 512, 512] },
    'observation.state': { type: 'STATE' as const, shape: [6] },
  },
  outputFeatures: { action: { type: 'ACTION' as const, shape: [6] } },
};

function configFor(size: string): SmolVLAConfig {
  if (size === 'full') return defaultConfig({ ...features, useClsHead: true });
  const raw = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'bench', 'small_config.json'), 'utf8')) as object;
  return parseConfig({ ...raw, input_features: { 'observation.images.top': { type: 'VISUAL', shape: [3, 512, 512] }, 'observation.state': { type: 'STATE', shape: [6] } }, output_features: { action: { type: 'ACTION', shape: [6] } } });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function peakRssMb(): number {
  const status = fs.readFileSync('/proc/self/status', 'utf8');
  const m = /VmHWM:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) / 1024 : process.memoryUsage().rss / 1e6;
}

/** Resets the process's peak RSS (VmHWM) so each model's peak is its own (Linux 4.0+; else kept). */
function resetPeakRss(): void {
  try {
    fs.writeFileSync('/proc/self/clear_refs', '5');
  } catch {
    // not permitted here: the peak then spans the run so far
  }
}

const rssMb = () => process.memoryUsage().rss / 1048576;

async function ours(config: SmolVLAConfig, args: Args, dtype: 'float32' | 'bfloat16') {
  resetPeakRss();
  const model = await SmolVLAModel.create(config, { seed: 0, dtype, device: args.device });
  const createdMb = rssMb();
  const obs = syntheticObservation(config);
  const prefix: number[] = [];
  const denoise: number[] = [];
  const delta: number[] = [];
  let packedMb = 0;
  for (let r = 0; r <= args.repeats; r++) {
    const t0 = performance.now();
    const cache = await model.prefix(obs);
    const t1 = performance.now();
    const { actions } = await model.sample(cache);
    if (args.device !== 'cpu') actions.data(); // the download waits for the GPU's queued work
    const t2 = performance.now();
    // Refine mode's cost: one delta-expert step on a queued chunk against the cache.
    const v = await model.deltaStep(cache, actions);
    const t3 = performance.now();
    v.dispose();
    actions.dispose();
    cache.dispose();
    if (r === 0) packedMb = gemmRoutes().packedBytes / 1048576;
    if (r > 0) {
      prefix.push((t1 - t0) / 1000);
      denoise.push((t2 - t1) / 1000);
      delta.push((t3 - t2) / 1000);
    }
  }
  const info = await model.info();
  const weightMb = info.bytes / 1048576;
  // The process apart from the model (Node, libtorch, memory earlier models left to malloc's heap).
  const baseMb = createdMb - weightMb;
  model.dispose();
  return { prefix: median(prefix), denoise: median(denoise), delta: median(delta), peakMb: peakRssMb(), baseMb, weightMb, packedMb, routes: gemmRoutes().report };
}

type Measured = Awaited<ReturnType<typeof ours>>;

/**
 * Where a model's peak RSS goes (MiB): the process without the model (its RSS once created, less the
 * weights: Node, libtorch, heap that earlier models left), the weights, the packed weight copies of
 * the GEMM route, and the rest (activations, the KV cache, pooled buffers).
 */
function memoryLine(a: Measured): string {
  const activations = a.peakMb - a.baseMb - a.weightMb - a.packedMb;
  const held = (a.weightMb + a.packedMb) / a.weightMb;
  return `peak RSS ${a.peakMb.toFixed(0)} MiB = process without the model ${a.baseMb.toFixed(0)} + weights ${a.weightMb.toFixed(0)} + packed copies ${a.packedMb.toFixed(0)} + activations and buffers ${activations.toFixed(0)}; weights held ${held.toFixed(2)} x their bytes`;
}

function reference(size: string, args: Args, dtype: 'float32' | 'bfloat16') {
  const script = path.join(__dirname, '..', '..', 'bench', 'reference_bench.py');
  // On the CPU Debian's python3-torch is the reference; on a GPU machine the python3 holding CUDA torch.
  const python = args.device === 'cpu' ? '/usr/bin/python3' : (process.env.PYTHON ?? 'python3');
  const job = { threads: args.threads, size, batch: 1, repeats: args.repeats, device: args.device, dtype };
  const r = spawnSync(python, [script, JSON.stringify(job)], {
    encoding: 'utf8',
    // The same BLAS settings as this process (threads, OPENBLAS_THREAD_TIMEOUT from lib/native.ts).
    env: { ...process.env, OPENBLAS_NUM_THREADS: String(args.threads), OMP_NUM_THREADS: String(args.threads) },
  });
  if (r.status !== 0) throw new Error(`PyTorch reference failed (is python3-torch installed?):\n${r.stderr}`);
  const j = JSON.parse(r.stdout) as { prefix_s: number[]; decode_s: number[]; peak_rss_mb: number; torch: string; compiled?: string };
  if (j.compiled) console.log(`PyTorch reference: ${j.compiled}`);
  return { prefix: median(j.prefix_s), denoise: median(j.decode_s), peakMb: j.peak_rss_mb, torch: j.torch };
}

/**
 * Per-decision cost of a control step, and the saving over the baseline loop that predicts a full
 * chunk every step (the similarity is checked every step). The stream is the demo's pattern: per
 * 12 steps one scene change; after each hit `reuseSteps` = 2 calls skip the prefix pass.
 */
function servingCosts(size: string, t: { prefix: number; denoise: number; delta: number }) {
  const ms = (s: number) => (s * 1000).toFixed(0);
  const miss = t.prefix + t.denoise;
  const kinds: Array<[string, number]> = [
    ['miss (full chunk)', miss],
    ['hit / skip (prefix only)', t.prefix],
    ['hit / refine (prefix + delta step)', t.prefix + t.delta],
    ['reuse / refine (delta step)', t.delta],
    ['reuse / skip (queued action)', 0],
  ];
  // 12 steps: 1 miss, then hits each followed by 2 reuse calls (hit, reuse, reuse, ...).
  const pattern = { miss: 1, hit: 4, reuse: 7 };
  const steps = pattern.miss + pattern.hit + pattern.reuse;
  const refine = pattern.miss * miss + pattern.hit * (t.prefix + t.delta) + pattern.reuse * t.delta;
  const skip = pattern.miss * miss + pattern.hit * t.prefix;
  return [
    ...kinds.map(([kind, s]) => ({ config: size, decision: kind, 'ms per step': ms(s), 'vs miss': (s / miss).toFixed(2) })),
    { config: size, decision: `stream, refine mode (${steps} steps)`, 'ms per step': ms(refine / steps), 'vs miss': (refine / steps / miss).toFixed(2) },
    { config: size, decision: `stream, skip mode (${steps} steps)`, 'ms per step': ms(skip / steps), 'vs miss': (skip / steps / miss).toFixed(2) },
  ];
}

interface RoofLine {
  dtype: string;
  chunkMs: number;
  percent: number;
  route: string;
  roof: number;
  torchMs: number;
  prefixPercent: number;
  decodePercent: number;
  /** Where the peak RSS went, with the fastest route and with the memory-lean plan. */
  memory: string;
}

/**
 * The dtype a robot would run: the one --dtype names; else the faster full-size chunk measured
 * above; else bfloat16 where the CPU computes it natively (avx512_bf16 or AMX), float32 elsewhere.
 */
function realtimeDtype(args: Args, summary: readonly RoofLine[]): 'float32' | 'bfloat16' {
  if (args.dtypeGiven) return args.dtypes[0]!;
  const measured = summary.filter((r) => r.chunkMs > 0).sort((a, b) => a.chunkMs - b.chunkMs)[0];
  if (measured) return measured.dtype as 'float32' | 'bfloat16';
  if (args.device !== 'cpu') return 'float32';
  const flags = fs.readFileSync('/proc/cpuinfo', 'utf8');
  return /\b(avx512_bf16|amx_bf16)\b/.test(flags) ? 'bfloat16' : 'float32';
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  setNumThreads(args.threads);
  const results: Record<string, unknown> = { threads: args.threads };
  const summary: RoofLine[] = [];
  if (args.serving !== 'only') for (const dtype of args.dtypes) summary.push(...(await modelBench(args, dtype, results)));
  if (args.serving !== 'skip') {
    console.log('\nServing over the network (openpi WebSocket protocol, loopback)');
    const sizes = args.servingSize === 'both' ? (['tiny', 'full'] as const) : [args.servingSize];
    const rows = [];
    for (const size of sizes) rows.push(...(await servingBench(size, args.repeats)));
    console.table(rows);
    results.network = rows;
  }
  if (args.serving !== 'only' && (!args.only || args.only === 'realtime')) {
    console.log('');
    const dtype = realtimeDtype(args, summary);
    await realtimeBench({ config: configFor('full'), dtype, ...(args.ticks ? { ticks: args.ticks } : {}), fps: 30 }, (line) => console.log(line));
  }
  if (args.json) fs.writeFileSync(args.json, JSON.stringify({ ...results, summary }, null, 2));
  // The closing lines: the full-size chunk per dtype against its roof, with the PyTorch reference beside.
  for (const r of summary) {
    const torch = Number.isFinite(r.torchMs) ? `, PyTorch reference ${r.torchMs.toFixed(0)} ms (ours/torch ${(r.chunkMs / r.torchMs).toFixed(2)})` : '';
    console.log(
      `roof-summary ${r.dtype}: chunk ${r.chunkMs.toFixed(0)} ms, ${r.percent.toFixed(0)} % of roof (route ${r.route}, roof ${r.roof.toFixed(0)} GFLOP/s)` +
        ` [prefix ${r.prefixPercent.toFixed(0)} %, decode loop ${r.decodePercent.toFixed(0)} %]${torch}`,
    );
    console.log(`memory-summary ${r.dtype}: ${r.memory}`);
  }
}

async function modelBench(args: Args, dtype: 'float32' | 'bfloat16', results: Record<string, unknown>): Promise<RoofLine[]> {
  console.log(`\nthreads ${args.threads}, dtype ${dtype}, device ${args.device}`);
  const cpu = args.device === 'cpu';
  const tracker = new RoofTracker(dtype);
  if (cpu) tracker.probe();
  const rows: Array<Record<string, string | number>> = [];
  const serving: Array<Array<Record<string, string>>> = [];
  const summary: RoofLine[] = [];
  const measured: Array<{ size: string; a: Awaited<ReturnType<typeof ours>>; b: ReturnType<typeof reference>; flops: ReturnType<typeof chunkFlops> }> = [];
  for (const size of ['small', 'full']) {
    if (args.only && args.only !== size) continue;
    const config = configFor(size);
    const flops = chunkFlops(config, 1, 48);
    const a = await ours(config, args, dtype);
    if (cpu) tracker.probe(); // between the model runs
    const b = reference(size, args, dtype);
    measured.push({ size, a, b, flops });
    serving.push(servingCosts(size, a));
  }
  if (cpu) tracker.probe();
  const roof = cpu ? tracker.roof() : { gflops: NaN, route: 'aten-linear' as const, spread: 0, rounds: 0 };
  if (cpu) {
    console.log(`matrix roof ${dtype}: ${roof.gflops.toFixed(0)} GFLOP/s (route ${roof.route}, best of ${roof.rounds} probes of each route; ${tracker.describe()})`);
    if (roof.spread > 0.2) console.log(`warning: the ${roof.route} probes varied by ${(100 * roof.spread).toFixed(0)} % between rounds: the machine was busy, figures are noisy`);
  }
  for (const { size, a, b, flops } of measured) {
    console.log(`${size} ${dtype}: model routes ${a.routes}; ${memoryLine(a)}`);
    const pct = (f: number, s: number) => {
      const rate = f / s / 1e9;
      if (cpu && rate > roof.gflops) console.log(`warning: ${size} reached ${rate.toFixed(0)} GFLOP/s, above the probed roof: the roof probes were unlucky`);
      return percentOfRoof(rate, roof.gflops);
    };
    const stage = (name: string, mine: number, theirs: number, f: number) => {
      const has = Number.isFinite(theirs);
      rows.push({
        config: size,
        stage: name,
        'ours ms': (mine * 1000).toFixed(0),
        'torch ms': has ? (theirs * 1000).toFixed(0) : '-',
        'ratio ours/torch': has ? (mine / theirs).toFixed(2) : '-',
        'GFLOP': (f / 1e9).toFixed(1),
        'ours GFLOP/s': (f / mine / 1e9).toFixed(1),
        'ours % roof': cpu ? pct(f, mine).toFixed(0) : '-',
        'torch % roof': has && cpu ? percentOfRoof(f / theirs / 1e9, roof.gflops).toFixed(0) : '-',
      });
    };
    if (cpu) {
      stage('prefix', a.prefix, b.prefix, flops.prefix);
      stage('denoise x' + configFor(size).numSteps, a.denoise, b.denoise, flops.denoise);
    }
    stage('chunk', a.prefix + a.denoise, b.prefix + b.denoise, flops.total);
    rows.push({ config: size, stage: 'peak RSS MiB', 'ours ms': a.peakMb.toFixed(0), 'torch ms': Number.isFinite(b.peakMb) ? b.peakMb.toFixed(0) : '-' });
    results[`${size}.${dtype}`] = { ours: a, torch: b, flops, roof };
    if (size === 'full' && cpu) {
      // The same model on the memory-lean plan: weights read in place but by the denoising loop.
      setGemmRoute('lean');
      const lean = await ours(configFor(size), { ...args, repeats: 1 }, dtype);
      setGemmRoute('auto');
      const memory =
        `fastest route: ${memoryLine(a)}. ` +
        `Lean plan: chunk ${((lean.prefix + lean.denoise) * 1000).toFixed(0)} ms, ${memoryLine(lean)}`;
      console.log(`${size} ${dtype} memory, ${memory}`);
      summary.push({
        memory,
        dtype,
        chunkMs: (a.prefix + a.denoise) * 1000,
        percent: pct(flops.total, a.prefix + a.denoise),
        route: roof.route,
        roof: roof.gflops,
        torchMs: (b.prefix + b.denoise) * 1000,
        prefixPercent: pct(flops.prefix, a.prefix),
        decodePercent: pct(flops.denoise, a.denoise),
      });
    }
  }
  if (rows.length > 0) printTimings(rows, serving);
  results[`serving.${dtype}`] = serving;
  return summary;
}

function printTimings(rows: Array<Record<string, string | number>>, serving: Array<Array<Record<string, string>>>): void {
  console.table(rows);
  console.log('ratio < 1: ours is faster. % roof: achieved matrix FLOP rate over the best probed GEMM roof of this dtype.');
  console.log('\nServing: cost of one control step by decision, and a loop that predicts every step');
  console.table(serving.flat());
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
