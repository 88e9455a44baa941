/** Matrix FLOPs (2·M·K·N per product) of one chunk, by stage, from the resolved dimensions. */
import { resolveDims, type SmolVLAConfig } from '../lib/index';

export interface ChunkFlops {
  prefix: number;
  /** All denoising steps together, including the one-off expert projection of the cache. */
  denoise: number;
  total: number;
}

export function chunkFlops(config: SmolVLAConfig, cameras: number, langTokens: number, batch = 1): ChunkFlops {
  const d = resolveDims(config);
  const v = d.vision;
  const t = d.text;
  const grid = config.resizeImgsWithPadding[1] / v.patchSize;
  const n = grid * grid;
  const mm = (m: number, k: number, nn: number) => 2 * m * k * nn;
  // Vision: patch embedding, then per layer q/k/v/out, attention, MLP; then the connector.
  let vision = mm(n, 3 * v.patchSize * v.patchSize, v.hidden);
  vision += v.layers * (mm(n, v.hidden, 4 * v.hidden) + 2 * mm(n, v.hidden, n) + 2 * mm(n, v.hidden, v.intermediate));
  vision += mm(n / d.scaleFactor ** 2, v.hidden * d.scaleFactor ** 2, t.hidden);
  const p = cameras * d.imageTokensPerCamera + langTokens + 1 + (config.useClsHead ? config.numClsPrefix : 0);
  const qkv = t.heads * t.headDim + 2 * t.kvHeads * t.headDim;
  const textLayer =
    mm(p, t.hidden, qkv) + 2 * mm(p, t.heads * t.headDim, p) + mm(p, t.heads * t.headDim, t.hidden) + 3 * mm(p, t.hidden, t.intermediate);
  const prefix = cameras * vision + d.numVlmLayers * textLayer;

  const c = config.chunkSize;
  const de = d.expertHidden;
  const kvw = t.kvHeads * t.headDim;
  let step = mm(c, config.maxActionDim, de) + mm(c, 2 * de, de) + mm(c, de, de) + mm(c, de, config.maxActionDim);
  let once = 0;
  const stride = d.numVlmLayers / d.numExpertLayers;
  for (let i = 0; i < d.numVlmLayers; i += stride) {
    const cross = d.crossAttention && !(config.selfAttnEveryNLayers > 0 && i % config.selfAttnEveryNLayers === 0);
    const keys = cross ? p : p + c;
    step += mm(c, de, t.heads * t.headDim) + 2 * mm(c, t.heads * t.headDim, keys) + mm(c, t.heads * t.headDim, de);
    step += 3 * mm(c, de, d.expertIntermediate);
    if (cross) once += 2 * mm(p, kvw, kvw);
    else step += 2 * mm(c, de, kvw);
  }
  const denoise = config.numSteps * step + once;
  return { prefix: batch * prefix, denoise: batch * denoise, total: batch * (prefix + denoise) };
}
