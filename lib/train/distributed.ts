/**
 * Data-parallel training over libtorch's c10d (ProcessGroupGloo on CPU, ProcessGroupNCCL on CUDA):
 * the membership of one worker process, read from torchrun's environment variables. Gradients are
 * averaged inside the native training step (bucketed all-reduce overlapped with backward); this
 * class carries what the training loop reduces between steps: metrics, the stop decision, and the
 * parameter-hash check.
 */
import { SmolVLAError, argumentError } from '../errors';
import type { SmolVLAModel } from '../model';
import { native, type NativeProcessGroup } from '../native';

/** torchrun's variables for one worker. */
export interface DistributedEnv {
  rank: number;
  worldSize: number;
  /** Rank among the workers on this machine. */
  localRank: number;
  /** Workers on this machine (LOCAL_WORLD_SIZE; default: all of them). */
  localWorldSize: number;
  masterAddr: string;
  masterPort: number;
}

export interface ProcessGroupOptions {
  /** Bounds the rendezvous and every collective: a dead or stuck peer becomes an error after it. */
  timeoutMs: number;
  /** 'cpu' (Gloo) or a CUDA device (NCCL). */
  device: string;
}

/** Default bound on the rendezvous and on each collective (a checkpoint save must fit in it). */
export const DEFAULT_TIMEOUT_S = 300;
/** DDP's default gradient bucket size. */
export const DEFAULT_BUCKET_MB = 25;

function envInt(env: NodeJS.ProcessEnv, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const v = Number(raw);
  if (!Number.isSafeInteger(v) || v < min || v > max) throw argumentError(name, `an integer in [${min}, ${max}]`, raw);
  return v;
}

/**
 * The worker's place in a multi-process run, from RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE,
 * MASTER_ADDR and MASTER_PORT; null when WORLD_SIZE is unset or 1 (a single-process run).
 */
export function distributedEnvFrom(env: NodeJS.ProcessEnv): DistributedEnv | null {
  const worldSize = envInt(env, 'WORLD_SIZE', 1);
  if (worldSize === undefined || worldSize === 1) return null;
  const rank = envInt(env, 'RANK', 0, worldSize - 1);
  if (rank === undefined) throw argumentError('RANK', `set with WORLD_SIZE=${worldSize} (an integer in [0, ${worldSize - 1}])`, undefined);
  const masterAddr = env.MASTER_ADDR ?? '';
  if (masterAddr === '') throw argumentError('MASTER_ADDR', "the host name or address of rank 0's machine", env.MASTER_ADDR);
  const masterPort = envInt(env, 'MASTER_PORT', 1, 65535);
  if (masterPort === undefined) throw argumentError('MASTER_PORT', 'the TCP port of the rendezvous on rank 0', undefined);
  return {
    rank,
    worldSize,
    localRank: envInt(env, 'LOCAL_RANK', 0) ?? rank,
    localWorldSize: envInt(env, 'LOCAL_WORLD_SIZE', 1) ?? worldSize,
    masterAddr,
    masterPort,
  };
}

export class ProcessGroup {
  private constructor(readonly handle: NativeProcessGroup) {}

  /** Joins the group: rank 0 hosts the TCPStore rendezvous; resolves once every rank has joined. */
  static async init(env: DistributedEnv, options: ProcessGroupOptions): Promise<ProcessGroup> {
    if (!(options.timeoutMs >= 1)) throw argumentError('timeoutMs', 'a positive number of milliseconds', options.timeoutMs);
    const device = options.device === 'cpu' ? 'cpu' : options.device.startsWith('cuda') ? 'cuda' : null;
    if (device === null) throw argumentError('device', "'cpu' or a CUDA device", options.device);
    const handle = await native.distributedInit({
      rank: env.rank,
      worldSize: env.worldSize,
      masterAddr: env.masterAddr,
      masterPort: env.masterPort,
      timeoutMs: Math.round(options.timeoutMs),
      device,
    });
    return new ProcessGroup(handle);
  }

  get rank(): number {
    return this.handle.rank;
  }

  get worldSize(): number {
    return this.handle.worldSize;
  }

  /** 'gloo' or 'nccl'. */
  get backend(): string {
    return this.handle.backend;
  }

  /** Rank 0 writes checkpoints, metrics and reports. */
  get isMain(): boolean {
    return this.rank === 0;
  }

  /** Every parameter and buffer takes rank 0's values (also a barrier: all ranks must call it). */
  async broadcastModel(model: SmolVLAModel): Promise<void> {
    await this.handle.broadcastModel(model.handle);
  }

  /**
   * The step's metrics averaged over the ranks, and whether any rank asked to stop (so that all
   * ranks leave the loop after the same step). Keys must be the same on every rank.
   */
  async reduceStep(metrics: Record<string, number>, stop: boolean): Promise<{ metrics: Record<string, number>; stop: boolean }> {
    const keys = Object.keys(metrics).sort();
    const values = new Float64Array(keys.length + 1);
    keys.forEach((k, i) => {
      values[i] = metrics[k] as number;
    });
    values[keys.length] = stop ? 1 : 0;
    const mean = await this.handle.allreduceMean(values);
    const out: Record<string, number> = {};
    keys.forEach((k, i) => {
      out[k] = mean[i] as number;
    });
    return { metrics: out, stop: (mean[keys.length] as number) > 0 };
  }

  /** This rank's parameter hash; throws ERR_SMOLVLA_DISTRIBUTED when the ranks' parameters differ. */
  async checkInSync(model: SmolVLAModel, step: number): Promise<string> {
    const r = await this.handle.checkInSync(model.handle);
    if (!r.inSync) {
      throw new SmolVLAError('ERR_SMOLVLA_DISTRIBUTED', `rank ${this.rank}: the ranks' parameters differ after step ${step} (this rank's hash ${r.hash}); the run is no longer data-parallel`);
    }
    return r.hash;
  }
}
