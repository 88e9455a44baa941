/**
 * The VLM tokenizer on the generated tiny byte-level BPE (test/fixtures/tokenizer,
 * SmolLM2-shaped, < 96 ids). Expected ids come from an independent classic BPE encoder in the Python
 * generator (tokenizer_cases.json); padding/truncation follow LeRobot's prepare_language.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { FAKE_IMAGE_TOKEN, GLOBAL_IMAGE_TOKEN, loadTokenizer, VlmTokenizer } from '../../lib/policy';
import { fixturesDir } from '../helpers';
import { TOKENIZER_JSON } from './fixtures';

const cases = (
  JSON.parse(fs.readFileSync(path.join(fixturesDir, 'policy', 'tokenizer_cases.json'), 'utf8')) as { cases: Array<{ text: string; ids: number[] }> }
).cases;
const tokenizerJson = JSON.parse(fs.readFileSync(TOKENIZER_JSON, 'utf8')) as Record<string, unknown>;

let tok: VlmTokenizer;
let tmp: string;
beforeAll(async () => {
  tok = await VlmTokenizer.fromFile(TOKENIZER_JSON);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'smolvla-tok-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('VlmTokenizer', () => {
  it.each(cases.map((c) => [JSON.stringify(c.text), c] as const))('encodes %s as the reference BPE', (_, c) => {
    expect(tok.encode(c.text)).toEqual(c.ids);
  });

  it('fits the tiny models (vocab 96) and resolves the pad and image tokens', () => {
    expect(tok.maxTokenId).toBeLessThan(96);
    expect(tok.padTokenId).toBe(tok.tokenId('<|im_end|>'));
    const fake = tok.tokenId(FAKE_IMAGE_TOKEN)!;
    const global = tok.tokenId(GLOBAL_IMAGE_TOKEN)!;
    expect(tok.imageSpecialTokens()).toEqual({ imageStartTokens: [fake, global], imageEndTokens: [fake] });
  });

  it('appends the newline, pads right to the longest row with the pad token and masks the padding', () => {
    const r = tok.tokenizeTasks(['pick up the cube', 'pickup\n'], { maxLength: 12, padTo: 'longest' });
    const pick = cases[0]!.ids;
    const pickup = cases.find((c) => c.text === 'pickup\n')!.ids;
    expect(r.length).toBe(pick.length);
    expect(Array.from(r.ids)).toEqual([...pick, ...pickup, ...new Array(pick.length - pickup.length).fill(tok.padTokenId)]);
    expect(Array.from(r.mask)).toEqual([...pick.map(() => 1), ...pickup.map(() => 1), ...new Array(pick.length - pickup.length).fill(0)]);
  });

  it('pads to tokenizer_max_length with max_length and truncates longer tasks to it', () => {
    const long = cases[cases.length - 1]!;
    expect(long.ids.length).toBeGreaterThan(12);
    const r = tok.tokenizeTasks([long.text, 'pick up the cube'], { maxLength: 12, padTo: 'max_length' });
    expect(r.length).toBe(12);
    expect(Array.from(r.ids.subarray(0, 12))).toEqual(long.ids.slice(0, 12));
    expect(Array.from(r.mask.subarray(0, 12))).toEqual(new Array(12).fill(1));
    expect(Array.from(r.mask.subarray(12))).toEqual([1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]);
    const longest = tok.tokenizeTasks([long.text], { maxLength: 12, padTo: 'longest' });
    expect(longest.length).toBe(12);
  });

  it('refuses to pad without a pad token, as transformers does', () => {
    const bare = new VlmTokenizer(tokenizerJson, {}, 'bare');
    expect(bare.padTokenId).toBeNull();
    expect(() => bare.tokenizeTasks(['pick'], { maxLength: 12, padTo: 'longest' })).toThrow(/has no pad token.*pad_token/);
    expect(() => new VlmTokenizer(tokenizerJson, { pad_token: '<nope>' }, 'x')).toThrow(/pad_token '<nope>' is not in the vocabulary/);
    const padded = new VlmTokenizer({ ...tokenizerJson, padding: { pad_id: 5 } }, {}, 'y');
    expect(padded.padTokenId).toBe(5);
  });

  it('names missing image tokens', () => {
    const vocab = { ...(tokenizerJson.model as { vocab: Record<string, number> }).vocab };
    delete vocab[GLOBAL_IMAGE_TOKEN];
    const added = (tokenizerJson.added_tokens as Array<{ content: string }>).filter((t) => t.content !== GLOBAL_IMAGE_TOKEN);
    const t = new VlmTokenizer({ ...tokenizerJson, added_tokens: added, model: { ...(tokenizerJson.model as object), vocab } }, {}, 'z');
    expect(() => t.imageSpecialTokens()).toThrow(/lacks <global-img>/);
  });

  it('saves tokenizer.json and tokenizer_config.json that read back identically', async () => {
    const dir = path.join(tmp, 'saved');
    await tok.save(dir);
    const back = await VlmTokenizer.fromFile(path.join(dir, 'tokenizer.json'));
    expect(back.padTokenId).toBe(tok.padTokenId);
    expect(back.encode(cases[1]!.text)).toEqual(cases[1]!.ids);
  });
});

describe('loadTokenizer search', () => {
  const put = (file: string) => {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.copyFileSync(TOKENIZER_JSON, file);
    fs.copyFileSync(path.join(path.dirname(TOKENIZER_JSON), 'tokenizer_config.json'), path.join(path.dirname(file), 'tokenizer_config.json'));
    return file;
  };
  const empty = { env: {}, homeDir: '/nonexistent-home' };

  it('takes the checkpoint folder first, then the explicit path', async () => {
    const ckpt = path.join(tmp, 'ckpt');
    const explicit = put(path.join(tmp, 'explicit', 'tokenizer.json'));
    fs.mkdirSync(ckpt, { recursive: true });
    expect((await loadTokenizer({ ...empty, checkpointDir: ckpt, path: explicit })).source).toBe(explicit);
    expect((await loadTokenizer({ ...empty, checkpointDir: ckpt, path: path.dirname(explicit) })).source).toBe(explicit);
    const inCkpt = put(path.join(ckpt, 'tokenizer.json'));
    expect((await loadTokenizer({ ...empty, checkpointDir: ckpt, path: explicit })).source).toBe(inCkpt);
    expect((await loadTokenizer(explicit)).source).toBe(explicit);
  });

  it('finds vlm_model_name in the Hugging Face cache (HF_HUB_CACHE, HF_HOME/hub, ~/.cache) via refs/main', async () => {
    const hub = path.join(tmp, 'hub');
    const repo = path.join(hub, 'models--Org--Tiny-VLM');
    const old = put(path.join(repo, 'snapshots', 'aaa', 'tokenizer.json'));
    const main = put(path.join(repo, 'snapshots', 'bbb', 'tokenizer.json'));
    fs.mkdirSync(path.join(repo, 'refs'), { recursive: true });
    fs.writeFileSync(path.join(repo, 'refs', 'main'), 'bbb\n');
    expect((await loadTokenizer({ vlmModelName: 'Org/Tiny-VLM', env: { HF_HUB_CACHE: hub }, homeDir: '/x' })).source).toBe(main);
    fs.writeFileSync(path.join(repo, 'refs', 'main'), 'ccc\n');
    const found = (await loadTokenizer({ vlmModelName: 'Org/Tiny-VLM', env: { HF_HUB_CACHE: hub }, homeDir: '/x' })).source;
    expect([old, main]).toContain(found);
    const home = path.join(tmp, 'home');
    const viaHome = put(path.join(home, '.cache', 'huggingface', 'hub', 'models--Org--Other', 'snapshots', 'c1', 'tokenizer.json'));
    expect((await loadTokenizer({ vlmModelName: 'Org/Other', env: {}, homeDir: home })).source).toBe(viaHome);
    const hfHome = path.join(tmp, 'hfhome');
    const viaHfHome = put(path.join(hfHome, 'hub', 'models--Org--Third', 'snapshots', 'd1', 'tokenizer.json'));
    expect((await loadTokenizer({ vlmModelName: 'Org/Third', env: { HF_HOME: hfHome }, homeDir: '/x' })).source).toBe(viaHfHome);
  });

  it('says where it looked and where to put the file', async () => {
    const ckpt = path.join(tmp, 'empty-ckpt');
    fs.mkdirSync(ckpt, { recursive: true });
    await expect(loadTokenizer({ ...empty, checkpointDir: ckpt, vlmModelName: 'Org/Missing' })).rejects.toThrow(
      /no tokenizer\.json found for 'Org\/Missing'[\s\S]*empty-ckpt[\s\S]*models--Org--Missing[\s\S]*huggingface-cli download Org\/Missing/,
    );
    await expect(loadTokenizer({ ...empty, path: path.join(tmp, 'nope.json') })).rejects.toThrow(/nope\.json does not exist/);
  });
});
