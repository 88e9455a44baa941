/** SmolVLAConfig (config.json) -> the flat struct the native model is built from. */
import { resolveDims, type SmolVLAConfig } from '../config';
import type { NativeModelConfig } from '../native';

export interface TokenIds {
  /** Tokens framing each camera's image tokens (add_image_special_tokens), from the tokenizer. */
  imageStartTokens?: number[];
  imageEndTokens?: number[];
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

export function toNativeConfig(config: SmolVLAConfig, tokens: TokenIds = {}): NativeModelConfig {
  const d = resolveDims(config);
  if (config.addImageSpecialTokens && !(tokens.imageStartTokens?.length && tokens.imageEndTokens?.length)) {
    throw new Error('add_image_special_tokens: the image start/end token ids must come from the tokenizer (pass a tokenizer)');
  }
  return {
    vision: { ...d.vision },
    text: { ...d.text },
    scaleFactor: d.scaleFactor,
    numVlmLayers: d.numVlmLayers,
    numExpertLayers: d.numExpertLayers,
    selfAttnEveryNLayers: config.selfAttnEveryNLayers,
    crossAttention: d.crossAttention,
    expertHidden: d.expertHidden,
    expertIntermediate: d.expertIntermediate,
    chunkSize: config.chunkSize,
    maxStateDim: config.maxStateDim,
    maxActionDim: config.maxActionDim,
    actionDim: actionDim(config),
    numSteps: config.numSteps,
    minPeriod: config.minPeriod,
    maxPeriod: config.maxPeriod,
    prefixLength: config.prefixLength,
    addImageSpecialTokens: config.addImageSpecialTokens,
    imageStartTokens: tokens.imageStartTokens ?? [],
    imageEndTokens: tokens.imageEndTokens ?? [],
    useClsHead: config.useClsHead,
    numClsPrefix: config.numClsPrefix,
    numClsSuffix: config.numClsSuffix,
    vicregWeight: config.vicregWeight,
    vicregLambda: config.vicregLambda,
    vicregMu: config.vicregMu,
    vicregNu: config.vicregNu,
    clsNoiseScale: config.clsNoiseScale,
    trainDeltaExpert: config.trainDeltaExpert,
    trainExpertOnly: config.trainExpertOnly,
    freezeVisionEncoder: config.freezeVisionEncoder,
    trainStateProj: config.trainStateProj,
  };
}
