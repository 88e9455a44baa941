/** Backbone resolution: vlm_backbone in config.json, the built-in SmolVLM2-500M, a local Hugging Face folder. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { configToJson, defaultConfig, parseConfig, readHfBackbone, resolveBackbone, SMOLVLM2_500M, SMOLVLM2_500M_BACKBONE } from '../../lib/config';

/** A SmolVLM-style Hugging Face config.json as transformers writes it: only values that differ from the class defaults. */
const HF_CONFIG = {
  architectures: ['SmolVLMForConditionalGeneration'],
  model_type: 'smolvlm',
  scale_factor: 4,
  image_token_id: 49190,
  text_config: {
    model_type: 'llama',
    hidden_act: 'silu',
    hidden_size: 576,
    intermediate_size: 1536,
    num_attention_heads: 9,
    num_hidden_layers: 30,
    num_key_value_heads: 3,
    rms_norm_eps: 1e-5,
    rope_theta: 100000,
    vocab_size: 49280,
  },
  vision_config: { model_type: 'smolvlm_vision', hidden_size: 768, image_size: 512, num_attention_heads: 12, patch_size: 16 },
};

const made: string[] = [];
afterAll(() => made.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function hfFolder(config: object): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smolvlm-'));
  made.push(dir);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  return dir;
}

describe('backbone resolution', () => {
  it('has the SmolVLM2-500M dimensions built in', () => {
    const b = resolveBackbone(SMOLVLM2_500M);
    expect(b).toEqual(SMOLVLM2_500M_BACKBONE);
    expect(b).not.toBe(SMOLVLM2_500M_BACKBONE);
  });

  it('prefers a vlm_backbone object in config.json, and always writes one', () => {
    const vlm_backbone = {
      text_config: { vocab_size: 96, hidden_size: 64, intermediate_size: 128, num_hidden_layers: 4, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 16, rms_norm_eps: 1e-5, attention_bias: false },
      vision_config: { hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, patch_size: 4, image_size: 32, layer_norm_eps: 1e-6 },
      scale_factor: 2,
    };
    const cfg = parseConfig({ vlm_model_name: SMOLVLM2_500M, num_vlm_layers: 4, resize_imgs_with_padding: [32, 32], vlm_backbone });
    expect(cfg.vlmBackbone.textConfig.hiddenSize).toBe(64);
    expect(configToJson(cfg).vlm_backbone).toStrictEqual(vlm_backbone);
  });

  it('derives head_dim and num_key_value_heads in vlm_backbone when absent', () => {
    const cfg = parseConfig({
      vlm_backbone: {
        text_config: { vocab_size: 96, hidden_size: 64, intermediate_size: 128, num_hidden_layers: 4, num_attention_heads: 4, rms_norm_eps: 1e-5 },
        vision_config: { hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, patch_size: 4, image_size: 32, layer_norm_eps: 1e-6 },
        scale_factor: 2,
      },
      num_vlm_layers: 4,
      resize_imgs_with_padding: [32, 32],
    });
    expect(cfg.vlmBackbone.textConfig).toMatchObject({ headDim: 16, numKeyValueHeads: 4, attentionBias: false });
  });

  it('reads a local Hugging Face folder with transformers defaults for the omitted keys', () => {
    const dir = hfFolder(HF_CONFIG);
    expect(readHfBackbone(path.join(dir, 'config.json'))).toEqual({
      textConfig: { vocabSize: 49280, hiddenSize: 576, intermediateSize: 1536, numHiddenLayers: 30, numAttentionHeads: 9, numKeyValueHeads: 3, headDim: 64, rmsNormEps: 1e-5, attentionBias: false },
      visionConfig: { hiddenSize: 768, intermediateSize: 3072, numHiddenLayers: 12, numAttentionHeads: 12, patchSize: 16, imageSize: 512, layerNormEps: 1e-6 },
      scaleFactor: 4,
    });
    const cfg = defaultConfig({ vlmModelName: dir, numVlmLayers: 15, numExpertLayers: 5 });
    expect(cfg.vlmBackbone.textConfig.hiddenSize).toBe(576);
    expect(configToJson(cfg).vlm_model_name).toBe(dir);
  });

  it('rejects what the native model does not implement, naming the file and key', () => {
    const cases: [object, RegExp][] = [
      [{ ...HF_CONFIG, text_config: { ...HF_CONFIG.text_config, model_type: 'mistral' } }, /text_config.model_type: only "llama" is supported, received "mistral"/],
      [{ ...HF_CONFIG, text_config: { ...HF_CONFIG.text_config, mlp_bias: true } }, /text_config.mlp_bias: only false is supported/],
      [{ ...HF_CONFIG, vision_config: { ...HF_CONFIG.vision_config, hidden_act: 'gelu' } }, /vision_config.hidden_act: only "gelu_pytorch_tanh"/],
      [{ ...HF_CONFIG, text_config: { ...HF_CONFIG.text_config, attention_bias: true } }, /text_config.attention_bias: only false is supported/],
      [{ model_type: 'llama', hidden_size: 576 }, /text_config: expected an object, received nothing/],
      [{ ...HF_CONFIG, text_config: { ...HF_CONFIG.text_config, hidden_size: '576' } }, /text_config.hidden_size: expected an integer/],
    ];
    for (const [config, message] of cases) {
      const dir = hfFolder(config);
      expect(() => defaultConfig({ vlmModelName: dir, numVlmLayers: -1 })).toThrow(message);
      expect(() => defaultConfig({ vlmModelName: dir, numVlmLayers: -1 })).toThrow(dir);
    }
    const broken = hfFolder({});
    fs.writeFileSync(path.join(broken, 'config.json'), '{ not json');
    expect(() => resolveBackbone(broken)).toThrow(/cannot read the VLM's Hugging Face config/);
  });

  it('says what to do when there is nothing to read the dimensions from', () => {
    const message = /vlm_model_name: no backbone dimensions for "HuggingFaceTB\/SmolVLM-256M-Instruct".*add a "vlm_backbone" object to config.json.*or set vlm_model_name to a folder/s;
    expect(() => parseConfig({ vlm_model_name: 'HuggingFaceTB/SmolVLM-256M-Instruct' })).toThrow(message);
    expect(() => resolveBackbone(path.join(hfFolder({}), 'missing'))).toThrow(/no backbone dimensions/);
  });
});
