/**
 * What the WebSocket server serves: a batch of validated observations in, one action chunk per
 * observation out, plus the metadata map sent on connect. `policyBackend` adapts a SmolVLAPolicy.
 *
 * Each request is a full chunk sampled from its own observation (openpi's `infer`): the server keeps
 * no per-episode state, so requests from different robots batch freely and a reconnect loses
 * nothing. `action_context` is validated but not used for refinement by this backend (ChunkPolicy's
 * contract: ignored by policies that do not refine).
 */
import type { SmolVLAConfig } from '../../config';
import type { InputSpec } from '../../policy/inputs';
import type { SmolVLAPolicy } from '../../policy/policy';
import type { DecodedRequest } from './observation';

export interface ServedChunk {
  /** chunk x actionDim, robot space, row-major. */
  actions: Float32Array;
  chunk: number;
  actionDim: number;
}

export interface ServingBackend {
  readonly spec: InputSpec;
  /** Sent as the first frame of every connection (string keys, plain values). */
  readonly metadata: Record<string, unknown>;
  /** One chunk per request, in order. */
  infer(requests: readonly DecodedRequest[]): Promise<ServedChunk[]>;
}

export interface PolicyBackendOptions {
  /** Control rate the policy was trained at, when known (sent in the metadata). */
  fps?: number;
  /** Extra metadata entries (e.g. a checkpoint name). */
  extra?: Record<string, unknown>;
}

function features(f: SmolVLAConfig['inputFeatures']): Record<string, { type: string; shape: number[] }> {
  return Object.fromEntries(Object.entries(f).map(([k, v]) => [k, { type: v.type, shape: [...v.shape] }]));
}

export function policyBackend(policy: SmolVLAPolicy, options: PolicyBackendOptions = {}): ServingBackend {
  const spec = policy.preprocessor.spec;
  const config = policy.config;
  const metadata: Record<string, unknown> = {
    policy_type: 'smolvla',
    input_features: features(config.inputFeatures),
    output_features: features(config.outputFeatures),
    cameras: [...spec.cameras],
    state_dim: spec.stateDim ?? config.maxStateDim,
    action_dim: spec.actionDim,
    chunk_size: config.chunkSize,
    n_action_steps: config.nActionSteps,
    ...(options.fps !== undefined ? { fps: options.fps } : {}),
    ...options.extra,
  };
  return {
    spec,
    metadata,
    async infer(requests) {
      const r = await policy.predictActionChunk(requests.map((q) => q.observation));
      r.actionsTensor?.dispose();
      r.obsClsOut?.dispose();
      return r.actions.map((actions) => ({ actions, chunk: actions.length / spec.actionDim, actionDim: spec.actionDim }));
    },
  };
}
