/**
 * Backbone dimensions. LeRobot's config.json does not hold them (Python fetches the VLM's
 * config from the hub by `vlm_model_name`); here they come, in this order, from a `vlm_backbone` object
 * in config.json (Hugging Face SmolVLM names), the built-in SmolVLM2-500M dimensions, or a local folder
 * named by `vlm_model_name` holding the VLM's Hugging Face `config.json`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { readJsonFileSync } from '../util/files';

import { boolean, camelToSnake, cloneJson, decodeObject, encodeObject, type Fields, integer, number, object } from './decode';
import { SmolVLAError } from '../errors';

export const SMOLVLM2_500M = 'HuggingFaceTB/SmolVLM2-500M-Video-Instruct';

/** A Llama (SmolLM2) text config in Hugging Face's names, camelCased. */
export interface TextBackbone {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  numKeyValueHeads: number;
  headDim: number;
  rmsNormEps: number;
  attentionBias: boolean;
}

/** A SmolVLM (SigLIP) vision config in Hugging Face's names, camelCased. */
export interface VisionBackbone {
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  patchSize: number;
  imageSize: number;
  layerNormEps: number;
}

/** `vlm_backbone` in config.json: `{ text_config, vision_config, scale_factor }`. */
export interface VlmBackbone {
  textConfig: TextBackbone;
  visionConfig: VisionBackbone;
  scaleFactor: number;
}

const TEXT_FIELDS: Fields<TextBackbone> = {
  vocabSize: integer,
  hiddenSize: integer,
  intermediateSize: integer,
  numHiddenLayers: integer,
  numAttentionHeads: integer,
  numKeyValueHeads: integer,
  headDim: integer,
  rmsNormEps: number,
  attentionBias: boolean,
};

const VISION_FIELDS: Fields<VisionBackbone> = {
  hiddenSize: integer,
  intermediateSize: integer,
  numHiddenLayers: integer,
  numAttentionHeads: integer,
  patchSize: integer,
  imageSize: integer,
  layerNormEps: number,
};

export const SMOLVLM2_500M_BACKBONE: Readonly<VlmBackbone> = Object.freeze({
  textConfig: {
    vocabSize: 49280,
    hiddenSize: 960,
    intermediateSize: 2560,
    numHiddenLayers: 32,
    numAttentionHeads: 15,
    numKeyValueHeads: 5,
    headDim: 64,
    rmsNormEps: 1e-5,
    attentionBias: false,
  },
  visionConfig: {
    hiddenSize: 768,
    intermediateSize: 3072,
    numHiddenLayers: 12,
    numAttentionHeads: 12,
    patchSize: 16,
    imageSize: 512,
    layerNormEps: 1e-6,
  },
  scaleFactor: 4,
});

/**
 * Defaults of transformers' config classes (LlamaConfig, SmolVLMVisionConfig, SmolVLMConfig): Hugging
 * Face writes only the values that differ from them, so a real SmolVLM config.json omits e.g. the
 * vision layer count (12). `head_dim` and `num_key_value_heads` default to values derived from others.
 */
const HF_TEXT_DEFAULTS: Partial<TextBackbone> = {
  vocabSize: 32000,
  hiddenSize: 4096,
  intermediateSize: 11008,
  numHiddenLayers: 32,
  numAttentionHeads: 32,
  rmsNormEps: 1e-6,
  attentionBias: false,
};
const HF_VISION_DEFAULTS: Partial<VisionBackbone> = {
  hiddenSize: 1152,
  intermediateSize: 3072,
  numHiddenLayers: 12,
  numAttentionHeads: 16,
  patchSize: 32,
  imageSize: 224,
  layerNormEps: 1e-6,
};

/** Adds what Llama derives when absent: kv heads = heads, head_dim = hidden // heads. */
function withDerivedDefaults(json: Record<string, unknown>, where: string, base: Partial<TextBackbone>): Partial<TextBackbone> {
  const heads = json.num_attention_heads ?? base.numAttentionHeads;
  const hidden = json.hidden_size ?? base.hiddenSize;
  if (heads === undefined || hidden === undefined) return base; // decodeObject reports the missing key
  const h = integer(heads, `${where}.num_attention_heads`);
  return { ...base, numKeyValueHeads: h, headDim: h > 0 ? Math.floor(integer(hidden, `${where}.hidden_size`) / h) : 0 };
}

function rejectUnknown(json: Record<string, unknown>, where: string, known: string[]): void {
  const key = Object.keys(json).find((k) => !known.includes(k));
  if (key !== undefined) throw new SmolVLAError('ERR_SMOLVLA_CONFIG', `${where}: unknown key "${key}" (accepted: ${known.join(', ')})`);
}

const snakeKeys = (fields: object): string[] => Object.keys(fields).map(camelToSnake);

/**
 * Decodes the `vlm_backbone` object of a config.json. Every dimension is required (this project writes
 * them all); only head_dim / num_key_value_heads (derivable) and attention_bias (false) may be absent.
 * Unknown keys are rejected rather than silently dropped.
 */
export function decodeVlmBackbone(json: unknown, where = 'vlm_backbone'): VlmBackbone {
  const root = object(json, where);
  rejectUnknown(root, where, ['text_config', 'vision_config', 'scale_factor']);
  const textWhere = `${where}.text_config`;
  const visionWhere = `${where}.vision_config`;
  const text = object(root.text_config, textWhere);
  const vision = object(root.vision_config, visionWhere);
  rejectUnknown(text, textWhere, snakeKeys(TEXT_FIELDS));
  rejectUnknown(vision, visionWhere, snakeKeys(VISION_FIELDS));
  return {
    textConfig: decodeObject(text, textWhere, TEXT_FIELDS, withDerivedDefaults(text, textWhere, { attentionBias: false })).value,
    visionConfig: decodeObject(vision, visionWhere, VISION_FIELDS, {}).value,
    scaleFactor: integer(root.scale_factor, `${where}.scale_factor`),
  };
}

export function vlmBackboneToJson(backbone: VlmBackbone): Record<string, unknown> {
  return {
    text_config: encodeObject(backbone.textConfig, TEXT_FIELDS),
    vision_config: encodeObject(backbone.visionConfig, VISION_FIELDS),
    scale_factor: backbone.scaleFactor,
  };
}

/** Fails on Hugging Face settings the native model does not implement (it is Llama with silu, no biases). */
function requireSupported(config: Record<string, unknown>, where: string, key: string, supported: unknown): void {
  if (config[key] !== undefined && config[key] !== supported) {
    throw new SmolVLAError('ERR_SMOLVLA_CONFIG', `${where}.${key}: only ${JSON.stringify(supported)} is supported, received ${JSON.stringify(config[key])}`);
  }
}

/** Reads the backbone dimensions from a Hugging Face SmolVLM `config.json` (its own names and defaults). */
export function readHfBackbone(file: string): VlmBackbone {
  let json: unknown;
  try {
    json = readJsonFileSync(file);
  } catch (e) {
    throw new SmolVLAError('ERR_SMOLVLA_CONFIG', `${file}: cannot read the VLM's Hugging Face config: ${(e as Error).message}`);
  }
  const root = object(json, file);
  const textWhere = `${file} text_config`;
  const visionWhere = `${file} vision_config`;
  const text = object(root.text_config, textWhere);
  const vision = object(root.vision_config, visionWhere);
  requireSupported(text, textWhere, 'model_type', 'llama');
  requireSupported(text, textWhere, 'hidden_act', 'silu');
  requireSupported(text, textWhere, 'attention_bias', false);
  requireSupported(text, textWhere, 'mlp_bias', false);
  requireSupported(vision, visionWhere, 'hidden_act', 'gelu_pytorch_tanh');
  return {
    textConfig: decodeObject(text, textWhere, TEXT_FIELDS, withDerivedDefaults(text, textWhere, HF_TEXT_DEFAULTS)).value,
    visionConfig: decodeObject(vision, visionWhere, VISION_FIELDS, HF_VISION_DEFAULTS).value,
    scaleFactor: root.scale_factor === undefined ? 2 : integer(root.scale_factor, `${file} scale_factor`),
  };
}

/**
 * The backbone for a config.json without `vlm_backbone`: built in for SmolVLM2-500M, else read from a
 * local folder `vlmModelName` (relative to the working directory) with a Hugging Face config.json.
 */
export function resolveBackbone(vlmModelName: string): VlmBackbone {
  if (vlmModelName === SMOLVLM2_500M) return cloneJson(SMOLVLM2_500M_BACKBONE) as VlmBackbone;
  const file = path.join(vlmModelName, 'config.json');
  if (vlmModelName !== '' && fs.existsSync(file)) return readHfBackbone(file);
  throw new SmolVLAError('ERR_SMOLVLA_CONFIG',
    `vlm_model_name: no backbone dimensions for ${JSON.stringify(vlmModelName)}: only ${SMOLVLM2_500M} is built in ` +
      `and no local folder of that name holds a Hugging Face config.json. Either add a "vlm_backbone" object to ` +
      `config.json ({"text_config": {vocab_size, hidden_size, intermediate_size, num_hidden_layers, ` +
      `num_attention_heads, num_key_value_heads, head_dim, rms_norm_eps, attention_bias}, "vision_config": ` +
      `{hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, patch_size, image_size, ` +
      `layer_norm_eps}, "scale_factor": s}) or set vlm_model_name to a folder (absolute, or relative to the working directory) holding the VLM's config.json.`,
  );
}
