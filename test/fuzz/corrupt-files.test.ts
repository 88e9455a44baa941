/**
 * Corrupt-file corpus: mutated safetensors files and config.json documents never crash or hang the
 * process; each loads or is refused with a coded error. Plus the cases found by hand: offsets near
 * 2^64, deep nesting, a header length one byte off, overlaps, gaps, non-string metadata, FIFOs and
 * devices, a file truncated while its tensors live, NaN weights, unbounded config values.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { parseConfig, readConfig, readSafetensors, resolveDims, SmolVLAModel, Tensor, writeSafetensors } from '../../lib/index';
import { fixturesDir } from '../helpers';
import { FUZZ_SCALE, codeOf, int, mutate, pick, rng } from './random';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smolvla-corrupt-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A safetensors file from a header object (padded with spaces like the reference writer) and data. */
function fileOf(header: unknown, data: Buffer, options: { lengthDelta?: number; pad?: boolean } = {}): Buffer {
  let text = typeof header === 'string' ? header : JSON.stringify(header);
  if (options.pad !== false) text += ' '.repeat((8 - (text.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(text.length + (options.lengthDelta ?? 0)));
  return Buffer.concat([len, Buffer.from(text, 'latin1'), data]);
}

async function load(bytes: Buffer): Promise<string> {
  const file = path.join(dir, 'case.safetensors');
  fs.writeFileSync(file, bytes);
  try {
    const { tensors } = await readSafetensors(file);
    for (const t of tensors.values()) {
      t.data();
      t.dispose();
    }
    return 'loaded';
  } catch (err) {
    return codeOf(err);
  }
}

const f32 = (values: number[]) => Buffer.from(Float32Array.from(values).buffer);

describe('safetensors: the reference format rules', () => {
  const two = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } };

  it('loads a well-formed file', async () => {
    expect(await load(fileOf(two, f32([1, 2, 3])))).toBe('loaded');
  });

  it.each([
    ['offsets near 2^64 (the pointer arithmetic used to wrap)', { a: { dtype: 'F32', shape: [1], data_offsets: ['18446744073709551612', '18446744073709551616'] } }, f32([1]), /malformed data_offsets|hold/],
    ['an end offset of 2^64 - 1', { a: { dtype: 'U8', shape: [0], data_offsets: [0, 0] }, b: { dtype: 'U8', shape: [4], data_offsets: [18446744073709551611n, 18446744073709551615n] } }, f32([1]), /data_offsets start at 18446744073709551611, expected 0 \(a gap before it\)/],
    ['a shape whose element count overflows', { a: { dtype: 'F64', shape: [4294967296, 4294967296], data_offsets: [0, 8] } }, f32([1, 2]), /shape overflows 64 bits/],
    ['overlapping tensors', { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, f32([1, 2]), /tensor 'b': data_offsets start at 4, expected 8 \(overlaps the previous tensor\)/],
    ['a gap between tensors', { a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } }, f32([1, 2, 3]), /a gap before it/],
    ['data after the last tensor', { a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, f32([1, 2]), /the tensors cover 4 bytes of a 8-byte data section/],
    ['a length that does not match shape x dtype', { a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, f32([1, 2]), /hold 8 bytes, its shape and F32 need 12/],
    ['non-string metadata', { __metadata__: { format: 'pt', n: 3 }, a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, f32([1]), /__metadata__ value 'n' is not a string/],
    ['deeply nested metadata', `{"__metadata__":{"x":${'['.repeat(100000)}${']'.repeat(100000)}}}`, Buffer.alloc(0), /nested deeper than 3 levels/],
    ['an extra key in a tensor entry', { a: { dtype: 'F32', shape: [1], data_offsets: [0, 4], x: 1 } }, f32([1]), /must have exactly dtype, shape and data_offsets/],
    ['a negative shape entry', { a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, f32([1]), /shape entry that is not a non-negative 64-bit integer/],
  ])('refuses %s', async (_label, header, data, message) => {
    const text = typeof header === 'string' ? header : JSON.stringify(header, (_k, v: unknown) => (typeof v === 'bigint' ? `__${v}__` : v)).replace(/"__(\d+)__"/g, '$1').replace(/"(\d{19,})"/g, '$1');
    const file = path.join(dir, 'rule.safetensors');
    fs.writeFileSync(file, fileOf(text, data));
    await expect(readSafetensors(file)).rejects.toMatchObject({ code: 'ERR_SMOLVLA_IO', message: expect.stringMatching(message) });
  });

  it('refuses a header length one byte short or long, and padding that is not spaces', async () => {
    const good = fileOf(two, f32([1, 2, 3]));
    for (const delta of [-1, 1]) {
      const bytes = Buffer.from(good);
      bytes.writeBigUInt64LE(bytes.readBigUInt64LE(0) + BigInt(delta), 0);
      expect(await load(bytes)).toBe('ERR_SMOLVLA_IO');
    }
    expect(await load(fileOf(`${JSON.stringify(two)}\n\n\n\n\n\n\n\n`, f32([1, 2, 3]), { pad: false }))).toBe('ERR_SMOLVLA_IO');
    expect(await load(fileOf(`  ${JSON.stringify(two)}`, f32([1, 2, 3])))).toBe('ERR_SMOLVLA_IO');
  });

  it('opens only regular files: a FIFO, a folder or a device is refused at once', async () => {
    const fifo = path.join(dir, 'fifo.safetensors');
    execFileSync('mkfifo', [fifo]);
    await expect(readSafetensors(fifo)).rejects.toMatchObject({ code: 'ERR_SMOLVLA_IO', message: expect.stringContaining('not a regular file') });
    await expect(readSafetensors(dir)).rejects.toMatchObject({ code: 'ERR_SMOLVLA_IO' });
    await expect(readSafetensors('/dev/zero')).rejects.toMatchObject({ code: 'ERR_SMOLVLA_IO', message: expect.stringContaining('not a regular file') });
    await expect(readSafetensors(`${fifo}\0.ignored`)).rejects.toMatchObject({ code: 'ERR_SMOLVLA_ARGUMENT', message: expect.stringContaining('without NUL bytes') });
    // config.json as a FIFO: refused, never waited on.
    const ckpt = path.join(dir, 'fifo-ckpt');
    fs.mkdirSync(ckpt);
    execFileSync('mkfifo', [path.join(ckpt, 'config.json')]);
    await expect(readConfig(ckpt)).rejects.toMatchObject({ code: 'ERR_SMOLVLA_IO', message: expect.stringContaining('not a regular file') });
  });

  it('keeps tensors valid when the file is truncated after loading (no SIGBUS)', async () => {
    const file = path.join(dir, 'shrinks.safetensors');
    await writeSafetensors(file, { a: Tensor.from(new Float32Array(1 << 16).fill(3), [1 << 16]) });
    const { tensors } = await readSafetensors(file);
    fs.truncateSync(file, 16);
    expect(tensors.get('a')!.toFloat32()[65535]).toBe(3);
  });

  it('refuses NaN weights at load, naming the tensor', async () => {
    const ckpt = path.join(dir, 'nan-ckpt');
    fs.mkdirSync(ckpt);
    fs.copyFileSync(path.join(fixturesDir, 'tiny_delta', 'config.json'), path.join(ckpt, 'config.json'));
    const { tensors, metadata } = await readSafetensors(path.join(fixturesDir, 'tiny_delta', 'model.safetensors'));
    const name = [...tensors.keys()].find((k) => k.endsWith('state_proj.weight'))!;
    const t = tensors.get(name)!;
    const values = t.toFloat32();
    values[1] = Number.NaN;
    tensors.set(name, Tensor.from(values, t.shape));
    await writeSafetensors(path.join(ckpt, 'model.safetensors'), tensors, metadata);
    await expect(SmolVLAModel.fromPretrained(ckpt)).rejects.toMatchObject({
      code: 'ERR_SMOLVLA_NOT_FINITE',
      message: expect.stringContaining(`checkpoint tensor '${name}' holds NaN or infinite values`),
    });
  });

  const files = 2000 * FUZZ_SCALE;
  it(`${files} mutated files: each loads or is refused with ERR_SMOLVLA_IO`, async () => {
    const seed = 1601;
    const r = rng(seed);
    const base = fileOf(
      {
        __metadata__: { format: 'pt', note: 'fuzz' },
        a: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] },
        b: { dtype: 'BF16', shape: [3], data_offsets: [16, 22] },
        c: { dtype: 'I64', shape: [1], data_offsets: [22, 30] },
        d: { dtype: 'BOOL', shape: [2], data_offsets: [30, 32] },
      },
      Buffer.alloc(32, 1),
    );
    const headerEnd = 8 + Number(base.readBigUInt64LE(0));
    const outcomes = new Map<string, number>();
    for (let i = 0; i < files; i++) {
      let bytes = base;
      for (let m = 1 + int(r, 3); m > 0; m--) bytes = mutate(r, bytes, Math.min(headerEnd, bytes.length));
      const outcome = await load(bytes);
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
      if (outcome !== 'loaded' && outcome !== 'ERR_SMOLVLA_IO') throw new Error(`seed ${seed} case ${i}: ${outcome}`);
    }
    expect([...outcomes.keys()].sort()).toEqual(['ERR_SMOLVLA_IO', 'loaded']);
  });
});

describe('config.json: bounds and a mutation corpus', () => {
  const text = fs.readFileSync(path.join(fixturesDir, 'tiny_delta', 'config.json'), 'utf8');
  const base = JSON.parse(text) as Record<string, unknown>;

  it.each([
    ['empty_cameras', 100000, 'empty_cameras must be an integer in [0, 64], received 100000'],
    ['tokenizer_max_length', 20000, 'tokenizer_max_length must be an integer in [1, 8192], received 20000'],
    ['chunk_size', 1e9, 'chunk_size must be an integer in [1, 4096], received 1000000000'],
    ['max_state_dim', 1e7, 'max_state_dim must be an integer in [1, 65536], received 10000000'],
    ['resize_imgs_with_padding', [100000, 100000], 'resize_imgs_with_padding must be two integers [width, height] in [1, 8192]'],
    ['num_steps', 1e6, 'num_steps must be an integer in [1, 4096]'],
  ])('refuses %s = %j naming the key and the bound', (key, value, message) => {
    expect(() => parseConfig({ ...base, [key]: value })).toThrow(message);
  });

  it('refuses unbounded backbone dimensions (layers 1e5, hidden size 1e6) and a model too large in all', () => {
    const backbone = base.vlm_backbone as Record<string, Record<string, unknown>>;
    const withVision = (over: Record<string, unknown>) => ({ ...base, vlm_backbone: { ...backbone, vision_config: { ...backbone.vision_config, ...over } } });
    const withText = (over: Record<string, unknown>) => ({ ...base, vlm_backbone: { ...backbone, text_config: { ...backbone.text_config, ...over } } });
    expect(() => parseConfig(withVision({ num_hidden_layers: 100000 }))).toThrow('vlm_backbone.vision_config.num_hidden_layers must be an integer in [1, 512], received 100000');
    expect(() => parseConfig(withText({ hidden_size: 1e6 }))).toThrow('vlm_backbone.text_config.hidden_size must be an integer in [1, 65536], received 1000000');
    expect(() => parseConfig(withText({ hidden_size: 65536, intermediate_size: 1 << 20, num_hidden_layers: 512, head_dim: 64 }))).toThrow(/describe a model of about .* parameters, more than the limit of 16 billion/);
  });

  const documents = 2000 * FUZZ_SCALE;
  it(`${documents} mutated documents: each parses or is refused with a message, and resolves bounded dimensions`, () => {
    const seed = 1602;
    const r = rng(seed);
    const extremes: unknown[] = [1e9, -1, 0, 1e308, -1e308, 2 ** 53, 100000, 0.5, 'x', '', null, true, [], {}, [1e9, 1e9], { a: [[[[]]]] }];
    const paths: string[][] = [];
    const walk = (v: unknown, at: string[]) => {
      if (v && typeof v === 'object') for (const [k, c] of Object.entries(v)) walk(c, [...at, k]);
      paths.push(at);
    };
    walk(base, []);
    let parsed = 0;
    for (let i = 0; i < documents; i++) {
      let doc: unknown = JSON.parse(text);
      if (r() < 0.3) {
        // Text-level damage: what a truncated or corrupted file holds.
        const bytes = Buffer.from(text);
        const damaged = mutate(r, Buffer.concat([Buffer.alloc(8), bytes]), bytes.length + 8).subarray(8).toString('latin1');
        try {
          doc = JSON.parse(damaged);
        } catch {
          continue;
        }
      } else {
        for (let m = 1 + int(r, 3); m > 0; m--) {
          const p = pick(r, paths);
          if (p.length === 0) continue;
          let holder = doc as Record<string, unknown>;
          for (const k of p.slice(0, -1)) holder = (holder?.[k] ?? {}) as Record<string, unknown>;
          if (holder && typeof holder === 'object') holder[p[p.length - 1]!] = pick(r, extremes);
        }
      }
      try {
        resolveDims(parseConfig(doc));
        parsed++;
      } catch (err) {
        if (!(err instanceof Error) || err.message.length === 0) throw new Error(`seed ${seed} case ${i}: threw ${String(err)}`);
      }
    }
    expect(parsed).toBeGreaterThan(0);
  });
});
