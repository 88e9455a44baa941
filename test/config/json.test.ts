/** config.json reading and writing: lossless round trips, defaults for missing keys, atomic writes, fixtures. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import {
  configToJson,
  FORK_CONFIG_KEYS,
  LEROBOT_CONFIG_KEYS,
  parseConfig,
  readConfig,
  resolveDims,
  SMOLVLM2_500M_BACKBONE,
  splitConfigJson,
  vlmBackboneToJson,
  writeConfig,
} from '../../lib/config';
import { LEROBOT_ONLY_KEYS, lerobotConfigJson } from './lerobot';

const made: string[] = [];
const tmp = (): string => {
  made.push(fs.mkdtempSync(path.join(os.tmpdir(), 'smolvla-config-')));
  return made.at(-1)!;
};
afterAll(() => made.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

describe('LeRobot config.json', () => {
  it('keeps every key and value of a real LeRobot config on a round trip', () => {
    const json = lerobotConfigJson();
    const cfg = parseConfig(json);
    expect(cfg.padLanguageTo).toBe('max_length');
    expect(cfg.prefixLength).toBe(0);
    expect(cfg.numExpertLayers).toBe(0);
    expect(cfg.loadVlmWeights).toBe(true);
    expect(cfg.inputFeatures['observation.images.top']).toEqual({ type: 'VISUAL', shape: [3, 480, 640] });
    expect(Object.keys(cfg.extra)).toEqual(LEROBOT_ONLY_KEYS);

    const out = configToJson(cfg);
    for (const [key, value] of Object.entries(json)) expect([key, out[key]]).toStrictEqual([key, value]);
    // What is added: the SPEC keys LeRobot lacks (at their defaults) and the backbone.
    const added = Object.keys(out).filter((k) => !(k in json));
    expect(added.sort()).toEqual(
      [
        'load_expert_weights',
        'train_delta_expert',
        'use_cls_head',
        'num_cls_prefix',
        'num_cls_suffix',
        'vicreg_weight',
        'vicreg_lambda',
        'vicreg_mu',
        'vicreg_nu',
        'cls_noise_scale',
        'cls_similarity_threshold',
        'vlm_backbone',
      ].sort(),
    );
    expect(out.vlm_backbone).toStrictEqual(vlmBackboneToJson(SMOLVLM2_500M_BACKBONE));
    expect(configToJson(parseConfig(out))).toStrictEqual(out);
  });

  it('keeps the key order of features and writes "type" first, extra keys last', () => {
    const out = configToJson(parseConfig(lerobotConfigJson()));
    expect(Object.keys(out)[0]).toBe('type');
    expect(Object.keys(out).slice(-LEROBOT_ONLY_KEYS.length)).toEqual(LEROBOT_ONLY_KEYS);
    expect(Object.keys(out.input_features as object)).toEqual(['observation.state', 'observation.images.top', 'observation.images.wrist']);
  });

  it('gives missing keys their defaults; null features mean none', () => {
    const cfg = parseConfig({ type: 'smolvla', chunk_size: 10, n_action_steps: 5, input_features: null });
    expect([cfg.chunkSize, cfg.nActionSteps, cfg.numSteps, cfg.inputFeatures]).toEqual([10, 5, 10, {}]);
    expect(parseConfig({}).chunkSize).toBe(50);
  });

  it('rejects another policy type and wrong JSON types, naming the key and the expected type', () => {
    expect(() => parseConfig({ type: 'pi0' })).toThrow(/type: expected "smolvla", received "pi0"/);
    expect(() => parseConfig([])).toThrow(/config.json: expected an object, received an array/);
    const bad: [string, unknown, RegExp][] = [
      ['chunk_size', '50', /chunk_size: expected an integer, received the string "50"/],
      ['chunk_size', 2.5, /chunk_size: expected an integer, received number 2.5/],
      ['use_cache', 'yes', /use_cache: expected true or false/],
      ['attention_mode', 5, /attention_mode: expected a string, received number 5/],
      ['optimizer_lr', null, /optimizer_lr: expected a finite number, received null/],
      ['resize_imgs_with_padding', [512], /resize_imgs_with_padding: expected an array of 2, received an array of 1/],
      ['optimizer_betas', [0.9, 'x'], /optimizer_betas\[1\]: expected a finite number/],
      ['input_features', { 'observation.state': { type: 'STATE', shape: [1.5] } }, /input_features\["observation.state"\].shape\[0\]: expected an integer/],
      ['input_features', { x: { type: 'STATE', shape: [1], dtype: 'f' } }, /input_features\["x"\]: unknown key "dtype"/],
      ['normalization_mapping', { VISUAL: 1 }, /normalization_mapping\["VISUAL"\]: expected a string/],
      ['vlm_backbone', { text_config: {}, vision_config: {}, scale_factor: 4 }, /vlm_backbone.text_config.vocab_size: missing/],
    ];
    for (const [key, value, message] of bad) expect(() => parseConfig({ ...lerobotConfigJson(), [key]: value })).toThrow(message);
  });

  it('writes atomically and reads back the same config', async () => {
    const dir = path.join(tmp(), 'checkpoint');
    const cfg = parseConfig(lerobotConfigJson());
    await writeConfig(dir, cfg);
    expect(fs.readdirSync(dir).sort()).toEqual(['config.json', 'smolvla_node.json']);
    const text = fs.readFileSync(path.join(dir, 'config.json'), 'utf8');
    const side = JSON.parse(fs.readFileSync(path.join(dir, 'smolvla_node.json'), 'utf8'));
    // config.json: only what LeRobot's SmolVLAConfig declares; the rest (the backbone) in the side file
    const lerobot = JSON.parse(text);
    expect(Object.keys(lerobot).filter((k) => k !== 'type' && !LEROBOT_CONFIG_KEYS.has(k))).toEqual([]);
    expect({ ...side, ...lerobot }).toStrictEqual(configToJson(cfg));
    expect(side.vlm_backbone).toStrictEqual(configToJson(cfg).vlm_backbone);
    expect(text).toMatch(/^\{\n {4}"type": "smolvla",/);
    expect(await readConfig(dir)).toStrictEqual(cfg);

    await writeConfig(dir, { ...cfg, chunkSize: 64, nActionSteps: 32 });
    expect((await readConfig(dir)).chunkSize).toBe(64);
    expect(fs.readdirSync(dir).sort()).toEqual(['config.json', 'smolvla_node.json']);
  });

  it("puts the fork's delta/CLS keys into config.json only when they are used", () => {
    const plain = splitConfigJson(configToJson(parseConfig(lerobotConfigJson())));
    expect(plain.lerobot.train_delta_expert).toBeUndefined();
    expect(plain.side.train_delta_expert).toBe(false);
    const delta = splitConfigJson(configToJson(parseConfig({ ...lerobotConfigJson(), train_delta_expert: true })));
    for (const key of FORK_CONFIG_KEYS) expect([key, key in delta.lerobot]).toEqual([key, true]);
  });

  it('refuses to write an invalid config and leaves the old file', async () => {
    const dir = tmp();
    const cfg = parseConfig(lerobotConfigJson());
    await writeConfig(dir, cfg);
    await expect(writeConfig(dir, { ...cfg, nActionSteps: 99 })).rejects.toThrow(/n_action_steps \(99\) must be <= chunk_size \(50\)/);
    expect((await readConfig(dir)).nActionSteps).toBe(50);
  });

  it('names the file when reading fails', async () => {
    const dir = tmp();
    await expect(readConfig(dir)).rejects.toThrow(path.join(dir, 'config.json'));
    fs.writeFileSync(path.join(dir, 'config.json'), '{"type": "smolvla", "chunk_size": -3}');
    await expect(readConfig(dir)).rejects.toThrow(new RegExp(`${path.join(dir, 'config.json')}: .*chunk_size must be an integer in \\[1, 4096\\], received -3`, 's'));
  });
});

describe('fixture configs written by the Python reference', () => {
  const root = path.join(__dirname, '..', 'fixtures');
  const dirs = fs.existsSync(root) ? fs.readdirSync(root).filter((d) => fs.existsSync(path.join(root, d, 'config.json'))) : [];

  it('exist', () => expect(dirs.length).toBeGreaterThan(0));

  it.each(dirs)('%s parses, resolves and round-trips losslessly', async (dir) => {
    const json = JSON.parse(fs.readFileSync(path.join(root, dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    const cfg = await readConfig(path.join(root, dir));
    const out = configToJson(cfg);
    for (const [key, value] of Object.entries(json)) expect([key, out[key]]).toStrictEqual([key, value]);
    const dims = resolveDims(cfg);
    const t = json.vlm_backbone as { text_config: { hidden_size: number } };
    expect(dims.text.hidden).toBe(t.text_config.hidden_size);
    expect(dims.cameras.length).toBeGreaterThan(0);
    expect(dims.numVlmLayers % dims.numExpertLayers).toBe(0);
  });
});
