/**
 * The fuzz set: ≥ 2 000 malformed observation frames in eight families, generated from a seed, for a
 * policy with the tiny demo model's features. Every one must be refused.
 */
import { Packr } from 'msgpackr';

import { seededRandom } from '../../../lib/data/random';
import type { InputSpec } from '../../../lib/policy/inputs';
import { encodeFrame, ndarray, npScalar } from '../../../lib/serving/websocket';

/** The tiny demo model's inputs (lib/train/presets.ts tinyConfig). */
export const SPEC: InputSpec = { cameras: ['observation.images.top'], stateDim: 6, maxStateDim: 32, actionDim: 6, chunkSize: 10, vocabSize: 260, maxTokens: 48 };

const packr = new Packr({ useRecords: false, moreTypes: false });

/** Encoded values of a valid observation (side: image height and width). */
function validEntries(side = 64, withContext = true): Array<[string, Buffer]> {
  const image = Uint8Array.from({ length: side * side * 3 }, (_, i) => (i * 37) % 256);
  const entries: Array<[string, Buffer]> = [
    ['observation/top', packr.pack(ndarray(image, [side, side, 3]))],
    ['observation/state', packr.pack(ndarray(Float32Array.from([0.1, -0.2, 0.3, 0, 0.5, -1]), [6]))],
    ['prompt', packr.pack('stack the blocks')],
  ];
  if (withContext) entries.push(['action_context', packr.pack(ndarray(new Float32Array(12).fill(0.25), [2, 6]))]);
  return entries;
}

/** A top-level map from raw value bytes (so a value can be anything, malformed included). */
function rawMap(entries: Array<[string | Buffer, Buffer]>): Buffer {
  const n = entries.length;
  const head = n < 16 ? Buffer.from([0x80 | n]) : Buffer.from([0xde, n >> 8, n & 0xff]);
  return Buffer.concat([head, ...entries.flatMap(([k, v]) => [typeof k === 'string' ? packr.pack(k) : k, v])]);
}

/** A frame the server must answer with actions. */
export function validObservation(side = 64): Buffer {
  return rawMap(validEntries(side));
}

function replaced(key: string, value: Buffer, side = 8): Buffer {
  return rawMap(validEntries(side).map(([k, v]) => [k, k === key ? value : v]));
}

export interface MalformedFrame {
  family: string;
  frame: Buffer;
}

export function malformedFrames(seed = 11): MalformedFrame[] {
  const r = seededRandom(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[int(0, xs.length - 1)]!;
  const out: MalformedFrame[] = [];
  const add = (family: string, frame: Buffer) => out.push({ family, frame });
  const keys = ['observation/top', 'observation/state', 'prompt', 'action_context'];

  // 1. Truncated msgpack: a valid frame cut anywhere before its end.
  for (let i = 0; i < 500; i++) {
    const full = rawMap(validEntries(pick([2, 4, 8]), r() < 0.5));
    add('truncated', full.subarray(0, int(0, full.length - 1)));
  }

  // 2. Wrong types for each key, and top levels that are not maps.
  const wrongFor: Record<string, Array<() => Buffer>> = {
    'observation/top': [
      () => packr.pack('an image'),
      () => packr.pack(int(-5, 5)),
      () => packr.pack([1, 2, 3]),
      () => packr.pack(null),
      () => packr.pack(Buffer.alloc(int(0, 64))),
      () => packr.pack(npScalar(1, 'uint8')),
      () => packr.pack(ndarray(new Int32Array(8 * 8 * 3), [8, 8, 3])),
      () => packr.pack(ndarray(new Float64Array(3 * 8 * 8), [3, 8, 8])),
      () => packr.pack(ndarray(new Uint8Array(64), [8, 8])),
    ],
    'observation/state': [
      () => packr.pack('state'),
      () => packr.pack(r()),
      () => packr.pack({ a: 1 }),
      () => packr.pack(['a', 'b', 'c', 'd', 'e', 'f']),
      () => packr.pack(ndarray(new Int32Array(6), [6])),
      () => packr.pack(ndarray(new Uint8Array(6), [6])),
      () => packr.pack(ndarray(new Float32Array(6), [1, 1, 6])),
      () => packr.pack(true),
    ],
    prompt: [() => packr.pack(int(0, 1000)), () => packr.pack(['stack']), () => packr.pack(Buffer.from('stack')), () => packr.pack({ text: 'x' }), () => packr.pack(null)],
    action_context: [
      () => packr.pack([[0, 0, 0, 0, 0, 0]]),
      () => packr.pack('context'),
      () => packr.pack(ndarray(new Float32Array(6), [6])),
      () => packr.pack(ndarray(new Int32Array(12), [2, 6])),
      () => packr.pack(ndarray(Float32Array.from({ length: 12 }, (_, i) => (i === 3 ? Number.NaN : 0)), [2, 6])),
    ],
  };
  for (let i = 0; i < 360; i++) {
    const key = pick(keys);
    add('wrong-type', replaced(key, pick(wrongFor[key]!)()));
  }
  for (const v of [[1, 2], 'observation', 42, null, true, Buffer.from('x'), 1.5]) {
    for (let k = 0; k < 6; k++) add('wrong-type', packr.pack(v));
  }

  // 3. Arrays that disagree with the policy's features or the limits.
  const oversize: Array<() => Buffer> = [
    () => replaced('observation/state', packr.pack(ndarray(new Float32Array(0), [0]))),
    () => {
      const d = pick([1, 2, 3, 4, 5, 7, 8, 12, 32, 33, 500]);
      return replaced('observation/state', packr.pack(ndarray(new Float32Array(d), [d])));
    },
    () => replaced('observation/state', packr.pack(ndarray(new Float32Array(0), [0, 6]))),
    () => {
      const t = int(5, 40);
      return replaced('observation/state', packr.pack(ndarray(new Float32Array(6 * t), [t, 6])));
    },
    () => {
      const side = int(2049, 60000);
      return replaced('observation/top', packr.pack(ndarray(new Uint8Array(side * 3), [1, side, 3])));
    },
    () => {
      const side = int(2049, 60000);
      return replaced('observation/top', packr.pack(ndarray(new Float32Array(3 * side), [3, side, 1])));
    },
    () => {
      const t = int(5, 12);
      return replaced('observation/top', packr.pack(ndarray(new Uint8Array(t * 12), [t, 2, 2, 3])));
    },
    () => replaced('observation/top', packr.pack(ndarray(new Uint8Array(0), [0, 4, 3]))),
    () => {
      const n = int(11, 200);
      return replaced('action_context', packr.pack(ndarray(new Float32Array(n * 6), [n, 6])));
    },
    () => {
      const d = pick([1, 5, 7, 32]);
      return replaced('action_context', packr.pack(ndarray(new Float32Array(2 * d), [2, d])));
    },
    () => replaced('prompt', packr.pack('x'.repeat(int(1001, 4000)))),
    () => replaced('prompt', packr.pack('x'.repeat(int(4097, 20000)))),
    () => {
      const n = int(1025, 3000);
      return rawMap([...validEntries(8), ['observation.language.tokens', packr.pack(ndarray(new Int32Array(n), [n]))]]);
    },
    // Shape and bytes that disagree.
    () => replaced('observation/state', packr.pack({ __ndarray__: true, data: Buffer.alloc(24), dtype: '<f4', shape: [int(1, 1 << 20), int(1, 1 << 20)] })),
  ];
  for (let i = 0; i < 300; i++) add('oversize', pick(oversize)());
  for (let i = 0; i < 40; i++) {
    const shape = pick([[2 ** 31, 2 ** 31], [2 ** 53, 2], [-1, 6], [6.5], [3, 64, 64, 1, 1, 1, 1], ['6']]);
    add('oversize', replaced(pick(['observation/state', 'observation/top', 'action_context']), packr.pack({ __ndarray__: true, data: Buffer.alloc(24), dtype: pick(['<f4', '|u1']), shape })));
  }

  // 4. Extension types (fixext 1-16, ext 8/16/32) anywhere: as a value, as a key, at the top.
  const ext = (): Buffer => {
    const type = int(0, 255);
    const form = int(0, 7);
    if (form < 5) return Buffer.concat([Buffer.from([0xd4 + form, type]), Buffer.alloc(1 << form, int(0, 255))]);
    const len = int(0, 40);
    if (form === 5) return Buffer.concat([Buffer.from([0xc7, len, type]), Buffer.alloc(len)]);
    if (form === 6) return Buffer.concat([Buffer.from([0xc8, 0, len, type]), Buffer.alloc(len)]);
    return Buffer.concat([Buffer.from([0xc9, 0, 0, 0, len, type]), Buffer.alloc(len)]);
  };
  for (let i = 0; i < 300; i++) {
    const where = int(0, 3);
    if (where === 0) add('extension', ext());
    else if (where === 1) add('extension', rawMap([...validEntries(4), [ext(), packr.pack(1)]]));
    else if (where === 2) add('extension', replaced(pick(keys), ext(), 4));
    else add('extension', replaced('prompt', Buffer.concat([Buffer.from([0x92]), packr.pack('a'), ext()]), 4));
  }

  // 5. Deep nesting (arrays and maps), up to far past the limit.
  for (let i = 0; i < 200; i++) {
    const depth = int(8, 400);
    const parts: Buffer[] = [];
    for (let d = 0; d < depth; d++) parts.push(r() < 0.5 ? Buffer.from([0x91]) : Buffer.concat([Buffer.from([0x81]), packr.pack('k')]));
    parts.push(packr.pack(1));
    add('deep', r() < 0.5 ? replaced('prompt', Buffer.concat(parts), 4) : Buffer.concat(parts));
  }

  // 6. Huge declared lengths: 16- and 32-bit string, bytes, array and map headers with little after.
  const huge = (): Buffer => {
    const n32 = int(1 << 20, 0xffffffff);
    const b32 = Buffer.from([n32 >>> 24, (n32 >>> 16) & 0xff, (n32 >>> 8) & 0xff, n32 & 0xff]);
    const n16 = int(200, 0xffff);
    const b16 = Buffer.from([n16 >> 8, n16 & 0xff]);
    return Buffer.concat([
      pick([
        Buffer.concat([Buffer.from([0xdb]), b32]),
        Buffer.concat([Buffer.from([0xc6]), b32]),
        Buffer.concat([Buffer.from([0xdd]), b32]),
        Buffer.concat([Buffer.from([0xdf]), b32]),
        Buffer.concat([Buffer.from([0xda]), b16]),
        Buffer.concat([Buffer.from([0xc5]), b16]),
        Buffer.concat([Buffer.from([0xdc]), b16]),
        Buffer.concat([Buffer.from([0xde]), b16]),
      ]),
      Buffer.alloc(int(0, 64), 0x01),
    ]);
  };
  for (let i = 0; i < 300; i++) {
    const where = int(0, 2);
    if (where === 0) add('huge-length', huge());
    else if (where === 1) add('huge-length', replaced(pick(keys), huge(), 4));
    else add('huge-length', Buffer.concat([Buffer.from([0xdf, 0xff, 0xff, 0xff, 0xff]), packr.pack('observation/state')]));
  }

  // 7. Unknown, duplicate and prototype-named keys; a missing state or task.
  for (let i = 0; i < 150; i++) {
    const k = pick(['__proto__', 'constructor', 'observation/unknown', 'observation.images.side', 'images', 'observation/images/top/x', 'state', '']);
    const kind = int(0, 3);
    if (kind === 0) add('keys', rawMap([...validEntries(4), [k, packr.pack(1)]]));
    else if (kind === 1) add('keys', rawMap([...validEntries(4), ['observation.images.top', validEntries(4)[0]![1]]]));
    else if (kind === 2) add('keys', rawMap(validEntries(4).filter(([key]) => key !== 'observation/state')));
    else add('keys', rawMap(validEntries(4).filter(([key]) => key !== 'prompt')));
  }

  // 8. Random bytes.
  for (let i = 0; i < 150; i++) add('random', Buffer.from(Array.from({ length: int(1, 300) }, () => int(0, 255))));
  return out;
}

/** A well-formed frame for the tiny model (LeRobot keys, float CHW image), for the Node side. */
export function dottedObservation(): Buffer {
  return encodeFrame({
    'observation.images.top': ndarray(new Float32Array(3 * 32 * 32).fill(0.5), [3, 32, 32]),
    'observation.state': ndarray(new Float64Array(6), [6]),
    task: 'stack the blocks',
  });
}
