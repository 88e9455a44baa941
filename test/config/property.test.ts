/** Property tests (fast-check): camelCase <-> snake_case names and config.json round trips. */
import fc from 'fast-check';

import { CONFIG_FIELD_NAMES, camelToSnake, configToJson, defaultConfig, parseConfig, snakeToCamel, type SmolVLAConfig } from '../../lib/config';

const word = fc.stringMatching(/^[a-z][a-z0-9]{0,6}$/);
const snakeName = fc.array(word, { minLength: 1, maxLength: 5 }).map((w) => w.join('_'));
const camelName = fc
  .tuple(word, fc.array(word, { maxLength: 4 }))
  .map(([head, rest]) => head + rest.map((w) => w[0]!.toUpperCase() + w.slice(1)).join(''));

describe('name mapping', () => {
  it('snake -> camel -> snake and camel -> snake -> camel are identities', () => {
    fc.assert(fc.property(snakeName, (s) => camelToSnake(snakeToCamel(s)) === s));
    fc.assert(fc.property(camelName, (c) => snakeToCamel(camelToSnake(c)) === c));
  });

  it('every config field maps to a distinct snake_case key and back', () => {
    const keys = CONFIG_FIELD_NAMES.map(camelToSnake);
    expect(new Set(keys).size).toBe(keys.length);
    for (const name of CONFIG_FIELD_NAMES) expect(snakeToCamel(camelToSnake(name))).toBe(name);
  });
});

/** Valid overrides: each field varied within its rules (cross-field rules kept by construction). */
const overrides: fc.Arbitrary<Partial<SmolVLAConfig>> = fc
  .record({
    chunkSize: fc.integer({ min: 1, max: 100 }),
    nObsSteps: fc.integer({ min: 1, max: 4 }),
    maxStateDim: fc.integer({ min: 14, max: 64 }),
    maxActionDim: fc.integer({ min: 14, max: 64 }),
    emptyCameras: fc.integer({ min: 0, max: 3 }),
    tokenizerMaxLength: fc.integer({ min: 1, max: 512 }),
    padLanguageTo: fc.constantFrom('longest' as const, 'max_length' as const),
    numSteps: fc.integer({ min: 1, max: 50 }),
    prefixLength: fc.integer({ min: -1, max: 1024 }),
    addImageSpecialTokens: fc.boolean(),
    adaptToPiAloha: fc.constant(false),
    attentionMode: fc.constantFrom('cross_attn', 'self_attn'),
    numVlmLayers: fc.constantFrom(-1, 8, 16, 32),
    selfAttnEveryNLayers: fc.integer({ min: -1, max: 4 }),
    minPeriod: fc.double({ min: 1e-4, max: 1, noNaN: true }),
    maxPeriod: fc.double({ min: 1, max: 100, noNaN: true }),
    loadVlmWeights: fc.boolean(),
    loadExpertWeights: fc.boolean(),
    freezeVisionEncoder: fc.boolean(),
    optimizerLr: fc.double({ min: 1e-7, max: 1, noNaN: true }),
    optimizerBetas: fc.tuple(fc.double({ min: 0, max: 0.99, noNaN: true }), fc.double({ min: 0, max: 0.999, noNaN: true })),
    schedulerWarmupSteps: fc.integer({ min: 0, max: 5000 }),
    trainDeltaExpert: fc.boolean(),
    useClsHead: fc.boolean(),
    numCls: fc.integer({ min: 2, max: 4 }),
    vicregWeight: fc.double({ min: 0, max: 1, noNaN: true }),
    clsSimilarityThreshold: fc.double({ min: 0, max: 1, noNaN: true }),
    stateDim: fc.integer({ min: 1, max: 14 }),
    extra: fc.dictionary(fc.stringMatching(/^x_[a-z_]{1,8}$/), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }),
  })
  .chain((r) =>
    fc.record({
      nActionSteps: fc.integer({ min: 1, max: r.chunkSize }),
      numExpertLayers: fc.constantFrom(-1, 0, ...[1, 2, 4, 8].filter((n) => (r.numVlmLayers > 0 ? r.numVlmLayers : 32) % n === 0)),
    }).map(({ nActionSteps, numExpertLayers }) => {
      const { numCls, stateDim, ...rest } = r;
      return {
        ...rest,
        nActionSteps,
        numExpertLayers,
        numClsPrefix: numCls,
        numClsSuffix: numCls,
        inputFeatures: {
          'observation.state': { type: 'STATE' as const, shape: [stateDim] },
          'observation.images.top': { type: 'VISUAL' as const, shape: [3, 480, 640] },
        },
        outputFeatures: { action: { type: 'ACTION' as const, shape: [stateDim] } },
      };
    }),
  );

describe('config.json round trips', () => {
  it('parseConfig(configToJson(c)) equals c, and writing again gives the same JSON', () => {
    fc.assert(
      fc.property(overrides, (o) => {
        const cfg = defaultConfig(o);
        const json = configToJson(cfg);
        const back = parseConfig(json);
        expect(back).toEqual(cfg);
        expect(configToJson(back)).toEqual(json);
      }),
      { numRuns: 150 },
    );
  });

  it('survives JSON text (no extra keys: JSON text cannot carry -0)', () => {
    fc.assert(
      fc.property(overrides, (o) => {
        const cfg = defaultConfig({ ...o, extra: {} });
        expect(parseConfig(JSON.parse(JSON.stringify(configToJson(cfg))))).toEqual(cfg);
      }),
      { numRuns: 100 },
    );
  });
});
