/**
 * `training_state/` in Python LeRobot's format (`optim/optimizers.py`, `optim/schedulers.py`,
 * `utils/random_utils.py`, `common/train_utils.py`), so that a run continues in either direction:
 *
 *   optimizer_state.safetensors   torch's `optimizer.state_dict()` without `param_groups`, flattened:
 *                                 `state.<i>.exp_avg`, `state.<i>.exp_avg_sq`, `state.<i>.step`
 *                                 (float32 scalar), i = the parameter's index in the policy's
 *                                 `parameters()` (LeRobot's SmolVLA hands all of them, frozen ones
 *                                 included, to AdamW; only trained ones have state)
 *   optimizer_param_groups.json   the one AdamW group with every key torch >= 2.7 writes
 *   scheduler_state.json          LambdaLR's `state_dict()` (torch >= 2.8 keys)
 *   training_step.json            {"step": n, ...}
 *   rng_state.safetensors         Python `random`, numpy and torch CPU generator states
 *   optimizer_param_names.json    (ours, Python ignores it) the parameter name of every index
 *
 * LeRobot reads the two JSON files with `deserialize_json_into_object`, which demands exactly the keys
 * and Python types of the objects it fills: floats are therefore always written with a decimal point.
 *
 * The parameter order is the policy's module order. Python's SmolVLM also holds `vlm.lm_head.weight`
 * (registered right after `vlm.model`), which this project does not build: its index is reserved so
 * the indices of the expert and projection parameters match Python's.
 */
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { cpuRngState } from '../runtime';
import { readSafetensors, writeSafetensors } from '../safetensors';
import { Tensor, disposeAll } from '../tensor';
import { SmolVLAError } from '../errors';

export const OPTIMIZER_STATE = 'optimizer_state.safetensors';
export const OPTIMIZER_PARAM_GROUPS = 'optimizer_param_groups.json';
export const OPTIMIZER_PARAM_NAMES = 'optimizer_param_names.json';
export const SCHEDULER_STATE = 'scheduler_state.json';
export const TRAINING_STEP = 'training_step.json';
export const RNG_STATE = 'rng_state.safetensors';

/** The Python parameter this project does not build, and the prefix it follows. */
const LM_HEAD = 'model.vlm_with_expert.vlm.lm_head.weight';
const VLM_MODEL_PREFIX = 'model.vlm_with_expert.vlm.model.';

/** The policy's parameters in Python's `parameters()` order, from this model's module order. */
export function lerobotParameterOrder(moduleOrder: readonly string[]): string[] {
  const out = moduleOrder.filter((n) => n !== LM_HEAD);
  let last = -1;
  out.forEach((n, i) => {
    if (n.startsWith(VLM_MODEL_PREFIX)) last = i;
  });
  out.splice(last + 1, 0, LM_HEAD);
  return out;
}

/** JSON with Python's number types: values wrapped by `pyFloat` are written as floats (`0.0`, `1e-10`). */
const FLOAT_MARK = '__pyfloat__';
function pyFloat(v: number): string {
  return `${FLOAT_MARK}${v}`;
}
function pythonJson(value: unknown): string {
  const text = JSON.stringify(value, null, 4);
  return `${text.replace(new RegExp(`"${FLOAT_MARK}([^"]*)"`, 'g'), (_, n: string) => {
    const v = Number(n);
    if (!Number.isFinite(v)) throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `not a finite float: ${n}`);
    return Number.isInteger(v) && !/e/i.test(n) ? `${n}.0` : n;
  })}\n`;
}

export interface AdamWHyper {
  /** Learning rate of the next update. */
  lr: number;
  /** The peak (scheduler base) learning rate. */
  initialLr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
}

export interface SchedulerHyper {
  peakLr: number;
  /** Learning rate of the next update. */
  nextLr: number;
}

/** The native optimizer's file: `step`, `exp_avg.<name>`, `exp_avg_sq.<name>`. */
interface NativeState {
  step: number;
  names: string[];
  tensors: Map<string, Tensor>;
}

async function readNativeState(file: string): Promise<NativeState> {
  const { tensors } = await readSafetensors(file);
  const step = tensors.get('step');
  if (!step) throw new SmolVLAError('ERR_SMOLVLA_IO', `${file}: no 'step' tensor (not an optimizer state written by this project)`);
  const value = Number(step.toFloat32()[0]);
  const names = [...tensors.keys()].filter((k) => k.startsWith('exp_avg.')).map((k) => k.slice('exp_avg.'.length));
  return { step: value, names, tensors };
}

/**
 * Writes the optimizer state, param groups, parameter names, scheduler state and RNG state of a
 * LeRobot training_state/ into `dir` from the native optimizer's own file `nativeFile`.
 */
export async function writeLerobotOptimizerFiles(
  dir: string,
  nativeFile: string,
  moduleOrder: readonly string[],
  adamw: AdamWHyper,
  scheduler: SchedulerHyper,
): Promise<void> {
  const order = lerobotParameterOrder(moduleOrder);
  const index = new Map(order.map((n, i) => [n, i]));
  const native = await readNativeState(nativeFile);
  const out = new Map<string, Tensor>();
  const created: Tensor[] = [];
  try {
    const entries = native.names.map((name) => {
      const i = index.get(name);
      if (i === undefined) throw new SmolVLAError('ERR_SMOLVLA_IO', `optimizer state: '${name}' is not a parameter of the model`);
      return [i, name] as const;
    });
    entries.sort((a, b) => a[0] - b[0]);
    for (const [i, name] of entries) {
      const step = Tensor.from(Float32Array.of(native.step), []);
      created.push(step);
      // torch's state_dict() lists each parameter's state as step, exp_avg, exp_avg_sq.
      out.set(`state.${i}.step`, step);
      out.set(`state.${i}.exp_avg`, native.tensors.get(`exp_avg.${name}`)!);
      out.set(`state.${i}.exp_avg_sq`, native.tensors.get(`exp_avg_sq.${name}`)!);
    }
    await writeSafetensors(path.join(dir, OPTIMIZER_STATE), out);
  } finally {
    disposeAll([...created, ...native.tensors.values()]);
  }
  const group = {
    lr: pyFloat(adamw.lr),
    betas: adamw.betas.map(pyFloat),
    eps: pyFloat(adamw.eps),
    weight_decay: pyFloat(adamw.weightDecay),
    amsgrad: false,
    foreach: null,
    maximize: false,
    capturable: false,
    differentiable: false,
    fused: null,
    decoupled_weight_decay: true,
    initial_lr: pyFloat(adamw.initialLr),
    params: order.map((_, i) => i),
  };
  await fsp.writeFile(path.join(dir, OPTIMIZER_PARAM_GROUPS), pythonJson([group]));
  await fsp.writeFile(path.join(dir, OPTIMIZER_PARAM_NAMES), `${JSON.stringify(order, null, 1)}\n`);
  await fsp.writeFile(
    path.join(dir, SCHEDULER_STATE),
    pythonJson({
      base_lrs: [pyFloat(scheduler.peakLr)],
      last_epoch: native.step,
      _step_count: native.step + 1,
      _get_lr_called_within_step: false,
      _last_lr: [pyFloat(scheduler.nextLr)],
      lr_lambdas: [null],
      _is_initial: false,
    }),
  );
  await writeRngState(path.join(dir, RNG_STATE), native.step);
}

/** training_step.json in LeRobot's fields (the topology fields describe a single process). */
export function trainingStepJson(step: number, batchSize: number): Record<string, unknown> {
  return { step, dp_world_size: 1, batch_size: batchSize, grad_accum_steps: 1 };
}

/** MT19937 seeded as init_genrand(seed): a valid state for Python's `random` and numpy. */
function mt19937State(seed: number): Uint32Array {
  const mt = new Uint32Array(624);
  mt[0] = seed >>> 0;
  for (let i = 1; i < 624; i++) {
    const prev = mt[i - 1]! ^ (mt[i - 1]! >>> 30);
    mt[i] = (Math.imul(1812433253, prev) + i) >>> 0;
  }
  return mt;
}

/**
 * rng_state.safetensors with every key LeRobot's deserialize_rng_state reads. The torch state is
 * libtorch's CPU generator state (the same bytes torch.get_rng_state() has); Python's `random` and
 * numpy get fresh MT19937 states derived from the step, since nothing here draws from them.
 */
async function writeRngState(file: string, step: number): Promise<void> {
  const mt = mt19937State(0x5eed0000 + step);
  const asInt64 = (values: ArrayLike<number>) => BigInt64Array.from(Array.from(values, (v) => BigInt(v)));
  const tensors: Record<string, Tensor> = {
    py_rng_version: Tensor.from(BigInt64Array.of(3n), [1]),
    // random.getstate()[1]: the 624 words and the position (624: regenerate on the next draw).
    py_rng_state: Tensor.from(asInt64([...mt, 624]), [625]),
    np_rng_state_values: Tensor.from(asInt64(mt), [624]),
    np_rng_state_index: Tensor.from(BigInt64Array.of(624n), [1]),
    np_rng_has_gauss: Tensor.from(BigInt64Array.of(0n), [1]),
    np_rng_cached_gaussian: Tensor.from(Float32Array.of(0), [1]),
    torch_rng_state: cpuRngState(),
  };
  try {
    await writeSafetensors(file, tensors);
  } finally {
    disposeAll(Object.values(tensors));
  }
}

/**
 * Converts LeRobot's optimizer_state.safetensors in `dir` into the native optimizer's format, in a
 * temporary file the caller loads and removes. Indices map to names through optimizer_param_names.json
 * when present (written here), else through this model's module order (a Python-written state).
 */
export async function nativeOptimizerFileFrom(dir: string, moduleOrder: readonly string[]): Promise<{ file: string; step: number; cleanup: () => Promise<void> }> {
  const source = path.join(dir, OPTIMIZER_STATE);
  const namesFile = path.join(dir, OPTIMIZER_PARAM_NAMES);
  const order: string[] = await fsp.readFile(namesFile, 'utf8').then(
    (t) => JSON.parse(t) as string[],
    () => lerobotParameterOrder(moduleOrder),
  );
  const { tensors } = await readSafetensors(source);
  const out = new Map<string, Tensor>();
  const steps = new Set<number>();
  const created: Tensor[] = [];
  try {
    for (const [key, t] of tensors) {
      const m = /^state\.(\d+)\.(exp_avg|exp_avg_sq|step)$/.exec(key);
      if (!m) continue;
      const name = order[Number(m[1])];
      if (name === undefined) throw new SmolVLAError('ERR_SMOLVLA_IO', `${source}: '${key}' indexes parameter ${m[1]}, the model has ${order.length}`);
      if (m[2] === 'step') steps.add(Number(t.toFloat32()[0]));
      else out.set(`${m[2]}.${name}`, t);
    }
    if (steps.size === 0) throw new SmolVLAError('ERR_SMOLVLA_IO', `${source}: no 'state.<i>.step' entries (an optimizer that never stepped, or not LeRobot's format)`);
    if (steps.size > 1) throw new SmolVLAError('ERR_SMOLVLA_IO', `${source}: parameters were updated different numbers of times (${[...steps].join(', ')}); this optimizer keeps one step count`);
    const step = [...steps][0]!;
    const stepTensor = Tensor.from(BigInt64Array.of(BigInt(step)), []);
    created.push(stepTensor);
    out.set('step', stepTensor);
    const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'smolvla-optim-'));
    const file = path.join(tmp, 'native_optimizer_state.safetensors');
    await writeSafetensors(file, out);
    return { file, step, cleanup: () => fsp.rm(tmp, { recursive: true, force: true }) };
  } finally {
    disposeAll([...created, ...tensors.values()]);
  }
}
