/** A fixed synthetic observation (one robot) for timing the model without a robot or a dataset. */
import { Tensor, type Observation, type SmolVLAConfig } from '../lib/index';

export function syntheticObservation(config: SmolVLAConfig): Observation {
  const side = config.resizeImgsWithPadding[1];
  return {
    images: [Tensor.from(Float32Array.from({ length: 3 * side * side }, (_, i) => Math.sin(i) * 0.9), [1, 3, side, side])],
    imgMasks: [Tensor.fromBools([1], [1])],
    langTokens: Tensor.fromInts(Array.from({ length: 48 }, (_, i) => (i * 7) % 1000), [1, 48]),
    langMasks: Tensor.fromBools(Array(48).fill(1), [1, 48]),
    state: Tensor.from(new Float32Array(config.maxStateDim), [1, config.maxStateDim]),
  };
}
