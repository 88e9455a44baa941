/** Derived dimensions as the native model needs them. */
import * as path from 'node:path';

import { defaultConfig, expertIntermediateSize, readConfig, resolveDims } from '../../lib/config';

describe('resolveDims', () => {
  it('gives the full-size model for the defaults', () => {
    const dims = resolveDims(defaultConfig());
    expect(dims).toEqual({
      vision: { hidden: 768, intermediate: 3072, layers: 12, heads: 12, patchSize: 16, imageSize: 512, layerNormEps: 1e-6 },
      text: { vocab: 49280, hidden: 960, intermediate: 2560, heads: 15, kvHeads: 5, headDim: 64, rmsNormEps: 1e-5 },
      scaleFactor: 4,
      numVlmLayers: 16,
      numExpertLayers: 16,
      expertHidden: 720,
      expertIntermediate: 2048,
      crossAttention: true,
      imagePatchGrid: 32,
      imageTokensPerCamera: 64,
      cameras: [],
    });
  });

  it('follows LeRobot get_intermediate_size, with Python int() truncation', () => {
    // 256 * ceil(4 * int(2h/3) / 256)
    expect([720, 480, 48, 64, 1, 100, 384, 385].map(expertIntermediateSize)).toEqual([2048, 1280, 256, 256, 0, 512, 1024, 1024]);
    expect(resolveDims(defaultConfig({ expertWidthMultiplier: 0.5 })).expertHidden).toBe(480);
    expect(resolveDims(defaultConfig({ expertWidthMultiplier: 0.751 })).expertHidden).toBe(720); // int(720.96): truncated, not rounded
  });

  it('resolves layer counts: <= 0 means all text layers / as many expert layers as VLM layers', () => {
    expect(resolveDims(defaultConfig({ numVlmLayers: 0 })).numVlmLayers).toBe(32);
    expect(resolveDims(defaultConfig({ numVlmLayers: 16, numExpertLayers: 8 })).numExpertLayers).toBe(8);
    expect(resolveDims(defaultConfig({ numVlmLayers: -1, numExpertLayers: 0 })).numExpertLayers).toBe(32);
    expect(resolveDims(defaultConfig({ attentionMode: 'self_attn' })).crossAttention).toBe(false);
  });

  it('lists the image features in config order, then the empty-camera placeholders', () => {
    const cfg = defaultConfig({
      emptyCameras: 2,
      inputFeatures: {
        'observation.images.wrist': { type: 'VISUAL', shape: [3, 480, 640] },
        'observation.state': { type: 'STATE', shape: [14] },
        'observation.images.top': { type: 'VISUAL', shape: [3, 480, 640] },
      },
      outputFeatures: { action: { type: 'ACTION', shape: [14] } },
    });
    expect(resolveDims(cfg).cameras).toEqual([
      'observation.images.wrist',
      'observation.images.top',
      'observation.images.empty_camera_0',
      'observation.images.empty_camera_1',
    ]);
    // A config saved after LeRobot's validate_features already lists the placeholders.
    const saved = defaultConfig({
      emptyCameras: 2,
      inputFeatures: {
        'observation.images.top': { type: 'VISUAL', shape: [3, 480, 640] },
        'observation.images.empty_camera_0': { type: 'VISUAL', shape: [3, 480, 640] },
        'observation.images.empty_camera_1': { type: 'VISUAL', shape: [3, 480, 640] },
      },
    });
    expect(resolveDims(saved).cameras).toEqual(['observation.images.top', 'observation.images.empty_camera_0', 'observation.images.empty_camera_1']);
  });

  it('counts image tokens from the padded image size', () => {
    expect(resolveDims(defaultConfig({ resizeImgsWithPadding: [256, 256] })).imageTokensPerCamera).toBe(16);
  });

  it('resolves the small fixture configs', async () => {
    const fixtures = path.join(__dirname, '..', 'fixtures');
    const fewer = resolveDims(await readConfig(path.join(fixtures, 'tiny_fewer')));
    expect(fewer).toMatchObject({ numVlmLayers: 4, numExpertLayers: 2, expertHidden: 48, expertIntermediate: 256, imagePatchGrid: 38, imageTokensPerCamera: 361 });
    expect(fewer.cameras).toEqual(['observation.images.cam0', 'observation.images.cam1']);
    const delta = resolveDims(await readConfig(path.join(fixtures, 'tiny_delta')));
    expect(delta).toMatchObject({ numVlmLayers: 4, numExpertLayers: 4, imagePatchGrid: 8, imageTokensPerCamera: 16 });
    expect(delta.text).toEqual({ vocab: 96, hidden: 64, intermediate: 128, heads: 4, kvHeads: 2, headDim: 16, rmsNormEps: 1e-5 });
  });
});
