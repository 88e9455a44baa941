/** Action chunks and argument checks shared by every Dataset implementation. */
import { SmolVLAError } from '../errors';

/**
 * The actions of positions [position, position + chunkSize) of one episode, rows of `actionDim`.
 * Like LeRobot's `_get_query_indices`, a query past the episode end is clamped to the episode's last
 * frame (so the last action repeats) and flagged in `actionIsPad`.
 */
export function actionChunk(
  actions: Float32Array,
  actionDim: number,
  position: number,
  episodeEnd: number,
  chunkSize: number,
): { actions: Float32Array; actionIsPad: Uint8Array } {
  const out = new Float32Array(chunkSize * actionDim);
  const isPad = new Uint8Array(chunkSize);
  for (let k = 0; k < chunkSize; k++) {
    let source = position + k;
    if (source >= episodeEnd) {
      source = episodeEnd - 1;
      isPad[k] = 1;
    }
    out.set(actions.subarray(source * actionDim, (source + 1) * actionDim), k * actionDim);
  }
  return { actions: out, actionIsPad: isPad };
}

export function checkPositiveInteger(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `${name} must be a positive integer, got ${String(value)}`);
  }
  return value;
}

export function checkSampleIndex(index: unknown, length: number, repoId: string): number {
  if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= length) {
    throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `dataset '${repoId}': index must be an integer in [0, ${length}), got ${String(index)}`);
  }
  return index;
}
