/**
 * The built-in tiny model the training CLI uses when no checkpoint is given: the same shape rules as
 * SmolVLA at widths that train in seconds on two CPU cores, sized for the synthetic
 * dataset's defaults (one 64x64 camera, 6-dimensional state and action).
 */
import { defaultConfig, type SmolVLAConfig } from '../config';

/** Name written as `vlm_model_name`: the backbone dimensions travel in `vlm_backbone`, nothing is fetched. */
export const TINY_VLM_NAME = 'smolvla-node/tiny-backbone';

/** Camera key, image size and vector widths the tiny preset expects from the synthetic dataset. */
export const TINY_CAMERA = 'observation.images.top';
export const TINY_IMAGE_SIZE: [number, number] = [64, 64];
export const TINY_STATE_DIM = 6;
export const TINY_ACTION_DIM = 6;

/**
 * A tiny delta-expert configuration with the CLS head on: 64x64 frames padded-resized to 32x32,
 * patch 4 (an 8x8 grid, 16 image tokens after the 2x pixel shuffle), 4 VLM / 4 expert layers of
 * width 64 / 48, a 256-token vocabulary (the byte tokenizer's), chunks of 10, 4 denoising steps.
 * Warmup/decay are short so the cosine schedule is visible within a few hundred steps.
 */
export function tinyConfig(overrides: Partial<SmolVLAConfig> = {}): SmolVLAConfig {
  return defaultConfig({
    chunkSize: 10,
    nActionSteps: 10,
    maxStateDim: 8,
    maxActionDim: 8,
    resizeImgsWithPadding: [32, 32],
    tokenizerMaxLength: 48,
    numSteps: 4,
    numVlmLayers: 4,
    numExpertLayers: -1,
    selfAttnEveryNLayers: 2,
    vlmModelName: TINY_VLM_NAME,
    inputFeatures: {
      [TINY_CAMERA]: { type: 'VISUAL', shape: [3, TINY_IMAGE_SIZE[1], TINY_IMAGE_SIZE[0]] },
      'observation.state': { type: 'STATE', shape: [TINY_STATE_DIM] },
    },
    outputFeatures: { action: { type: 'ACTION', shape: [TINY_ACTION_DIM] } },
    optimizerLr: 1e-3,
    schedulerWarmupSteps: 20,
    schedulerDecaySteps: 1000,
    schedulerDecayLr: 2.5e-5,
    trainDeltaExpert: true,
    useClsHead: true,
    numClsPrefix: 2,
    numClsSuffix: 2,
    vlmBackbone: {
      textConfig: {
        vocabSize: 256,
        hiddenSize: 64,
        intermediateSize: 128,
        numHiddenLayers: 4,
        numAttentionHeads: 4,
        numKeyValueHeads: 2,
        headDim: 16,
        rmsNormEps: 1e-5,
        attentionBias: false,
      },
      visionConfig: {
        hiddenSize: 32,
        intermediateSize: 64,
        numHiddenLayers: 2,
        numAttentionHeads: 4,
        patchSize: 4,
        imageSize: 32,
        layerNormEps: 1e-6,
      },
      scaleFactor: 2,
    },
    ...overrides,
  });
}

/**
 * The demo's built-in model (`smolvla-node demo`, assets/demo-model): the tiny model's text and
 * expert layers, a 6-layer vision encoder of width 64 on the simulator's full 64x64 frame with
 * patch 2 (1024 patches, 256 image tokens after the pixel shuffle), chunks of 20 and SmolVLA's 10
 * denoising steps. The image tokens make one chunk cost several 30 Hz control periods on a
 * two-core CPU (as a real policy does against its robot) while the parameters stay under a million
 * (a few MB in float32).
 */
export function demoConfig(overrides: Partial<SmolVLAConfig> = {}): SmolVLAConfig {
  const tiny = tinyConfig();
  return tinyConfig({
    chunkSize: 20,
    nActionSteps: 20,
    resizeImgsWithPadding: [64, 64],
    numSteps: 10,
    vlmBackbone: {
      ...tiny.vlmBackbone,
      visionConfig: { ...tiny.vlmBackbone.visionConfig, hiddenSize: 64, intermediateSize: 192, numHiddenLayers: 6, patchSize: 2, imageSize: 64 },
    },
    ...overrides,
  });
}
