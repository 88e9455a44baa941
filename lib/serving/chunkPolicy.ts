/**
 * The port between a control loop and whatever computes action chunks: an in-process policy or a
 * remote one over the network. The real-time control runtime talks only to this interface, so a
 * robot controller switches between local and remote inference by changing one constructor.
 */
import type { RobotObservation } from '../policy/inputs';

/** How a request was answered (decisions of the CLS state machine; `remote` when unknown). */
export type ChunkDecision = 'miss' | 'hit-skip' | 'hit-refine' | 'reuse' | 'remote';

export interface ChunkRequestOptions {
  /**
   * The next queued actions (robot space, one Float32Array of actionDim values per step, oldest
   * first) for delta refinement; ignored by policies that do not refine.
   */
  actionContext?: readonly Float32Array[];
  /** Cancels the request (the promise rejects with code ERR_SMOLVLA_ABORTED). */
  signal?: AbortSignal;
  /**
   * The control step the observation was taken for (the chunk's first action is for this step).
   * Policies that reuse a cached scene bound the reuse by it (never longer than reuseSteps steps).
   */
  step?: number;
  /**
   * Actions the caller still has queued. A policy whose scene check says "unchanged" still samples a
   * full chunk when this is too short to last until the next answer could arrive.
   */
  queued?: number;
}

export interface ChunkResult {
  /** Actions in robot space: `chunk` rows of `actionDim` values, row-major (chunk × actionDim). */
  actions: Float32Array;
  /** Number of rows in `actions`. Zero for a skip (keep executing what is queued). */
  chunk: number;
  actionDim: number;
  decision: ChunkDecision;
  /** CLS similarity of this observation to the cached scene; null when not computed. */
  similarity: number | null;
  /** Milliseconds spent computing, as measured where the work ran. */
  computeMs: number;
  /** True when the policy judged this observation a new scene (a miss by similarity); absent when unknown. */
  sceneChanged?: boolean;
}

export interface ChunkPolicyInfo {
  chunkSize: number;
  actionDim: number;
  /** Control rate the policy was trained at, when known. */
  fps?: number;
}

export interface ChunkPolicy {
  readonly info: ChunkPolicyInfo;
  /** One observation of one robot in, one chunk out. Calls are serialised by the implementation. */
  requestChunk(observation: RobotObservation, options?: ChunkRequestOptions): Promise<ChunkResult>;
  /** Forget cached scenes and episode state (a new episode starts). */
  reset(): Promise<void>;
  dispose(): Promise<void>;
}
