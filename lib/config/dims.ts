/** The dimensions the native model is built with, derived from a config as LeRobot derives them. */
import type { SmolVLAConfig } from './schema';
import { validateConfig } from './validate';

export interface ResolvedDims {
  vision: {
    hidden: number;
    intermediate: number;
    layers: number;
    heads: number;
    patchSize: number;
    imageSize: number;
    layerNormEps: number;
  };
  /** The VLM's text model; `hidden` is Dv. */
  text: {
    vocab: number;
    hidden: number;
    intermediate: number;
    heads: number;
    kvHeads: number;
    headDim: number;
    rmsNormEps: number;
  };
  scaleFactor: number;
  /** Kept VLM layers: the first num_vlm_layers (all of the backbone's when <= 0). */
  numVlmLayers: number;
  /** Expert layers: num_expert_layers, or numVlmLayers when <= 0. */
  numExpertLayers: number;
  /** De = int(Dv * expert_width_multiplier). */
  expertHidden: number;
  /** LeRobot get_intermediate_size(De). */
  expertIntermediate: number;
  /** Whether non-self-attention layers are cross-attention layers (`"cross"` in attention_mode). */
  crossAttention: boolean;
  /** Patches per side of the padded image (resize_imgs_with_padding / patch_size; validated square). */
  imagePatchGrid: number;
  /** Image tokens per camera after the connector's pixel shuffle: grid² / scale_factor². */
  imageTokensPerCamera: number;
  /** Image inputs in prefix order: the VISUAL input features, then the empty-camera placeholders. */
  cameras: string[];
  /** The real action width (see actionDim). */
  actionDim: number;
}

/** The real action width: output_features' action shape, else max_action_dim. */
export function actionDim(config: SmolVLAConfig): number {
  const action = config.outputFeatures.action;
  return action?.shape[0] ?? config.maxActionDim;
}

/** The real state width: input_features' observation.state shape, else max_state_dim. */
export function stateDim(config: SmolVLAConfig): number {
  const state = config.inputFeatures['observation.state'];
  return state?.shape[0] ?? config.maxStateDim;
}

/**
 * LeRobot's get_intermediate_size(hidden, ffn_dim_multiplier 4, multiple_of 256):
 * 256 * ceil(4 * int(2 * hidden / 3) / 256), with Python's int() truncation.
 */
export function expertIntermediateSize(hidden: number): number {
  const h = 4 * Math.trunc((2 * hidden) / 3);
  return 256 * Math.ceil(h / 256);
}

/** The image feature keys followed by `observation.images.empty_camera_<i>` for each empty camera. */
export function cameraKeys(config: SmolVLAConfig): string[] {
  const images = Object.entries(config.inputFeatures)
    .filter(([, f]) => f.type === 'VISUAL')
    .map(([key]) => key);
  // LeRobot's validate_features adds the placeholders to input_features, so a saved config may list
  // them already. A Set keeps this linear (validateConfig bounds empty_cameras, but callers may not
  // have validated yet).
  const seen = new Set(images);
  for (let i = 0; i < config.emptyCameras; i++) {
    const key = `observation.images.empty_camera_${i}`;
    if (!seen.has(key)) {
      seen.add(key);
      images.push(key);
    }
  }
  return images;
}

/** Validates `config` and derives the model's dimensions. */
export function resolveDims(config: SmolVLAConfig): ResolvedDims {
  validateConfig(config);
  const { textConfig: t, visionConfig: v, scaleFactor } = config.vlmBackbone;
  const numVlmLayers = config.numVlmLayers > 0 ? config.numVlmLayers : t.numHiddenLayers;
  const expertHidden = Math.trunc(t.hiddenSize * config.expertWidthMultiplier);
  const imagePatchGrid = Math.floor(config.resizeImgsWithPadding[1] / v.patchSize);
  return {
    vision: {
      hidden: v.hiddenSize,
      intermediate: v.intermediateSize,
      layers: v.numHiddenLayers,
      heads: v.numAttentionHeads,
      patchSize: v.patchSize,
      imageSize: v.imageSize,
      layerNormEps: v.layerNormEps,
    },
    text: {
      vocab: t.vocabSize,
      hidden: t.hiddenSize,
      intermediate: t.intermediateSize,
      heads: t.numAttentionHeads,
      kvHeads: t.numKeyValueHeads,
      headDim: t.headDim,
      rmsNormEps: t.rmsNormEps,
    },
    scaleFactor,
    numVlmLayers,
    numExpertLayers: config.numExpertLayers > 0 ? config.numExpertLayers : numVlmLayers,
    expertHidden,
    expertIntermediate: expertIntermediateSize(expertHidden),
    crossAttention: config.attentionMode.includes('cross'),
    imagePatchGrid,
    imageTokensPerCamera: (imagePatchGrid / scaleFactor) ** 2,
    cameras: cameraKeys(config),
    actionDim: actionDim(config),
  };
}
