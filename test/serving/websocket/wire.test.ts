/** openpi's msgpack conventions, the structural scan and the observation mapping (no model needed). */
import { Packr } from 'msgpackr';

import type { InputSpec } from '../../../lib/policy/inputs';
import { decodeFrame, decodeMap, encodeFrame, NdArray, ndarray, NpScalar, npScalar, policyKey, scanMsgpack, toRequest, DEFAULT_WIRE_LIMITS } from '../../../lib/serving/websocket';
import { malformedFrames, validObservation, SPEC } from './malformed';

const plainPackr = new Packr({ useRecords: false, moreTypes: false });

describe('wire format', () => {
  it('round-trips arrays with bytes keys as openpi writes them', () => {
    const a = Float32Array.from([1.5, -2, 3.25, 4, 5, 6]);
    const frame = encodeFrame({ actions: ndarray(a, [2, 3]), n: npScalar(7, 'int64'), s: 'x' });
    // openpi's unpacker looks keys up as bytes: the first key of the array map is bin 8 "__ndarray__".
    const at = frame.indexOf(Buffer.from('__ndarray__'));
    expect(frame[at - 2]).toBe(0xc4);
    const m = decodeMap(frame);
    const actions = m.get('actions') as NdArray;
    expect(actions).toBeInstanceOf(NdArray);
    expect(actions.dtype).toBe('float32');
    expect(actions.shape).toEqual([2, 3]);
    expect(Array.from(actions.data as Float32Array)).toEqual(Array.from(a));
    expect(m.get('n')).toEqual(new NpScalar('int64', 7));
  });

  it('accepts string keys and numpy dtype strings, copies unaligned data', () => {
    const data = Buffer.alloc(9);
    Float64Array.from([0.5]).forEach((v) => data.writeDoubleLE(v, 1));
    const frame = plainPackr.pack({ x: { __ndarray__: true, data: data.subarray(1), dtype: '<f8', shape: [1] } });
    const x = decodeMap(frame).get('x') as NdArray;
    expect(x.dtype).toBe('float64');
    expect(x.data[0]).toBe(0.5);
  });

  it('refuses every extension type, reserved bytes, trailing bytes and non-string keys', () => {
    const limits = DEFAULT_WIRE_LIMITS;
    for (const type of [0xc7, 0xc8, 0xc9, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8]) {
      expect(() => scanMsgpack(Uint8Array.from([0x81, 0xa1, 0x61, type, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), limits)).toThrow(/extension type/);
    }
    expect(() => scanMsgpack(Uint8Array.from([0xc1]), limits)).toThrow(/reserved/);
    expect(() => scanMsgpack(Uint8Array.from([0x80, 0x00]), limits)).toThrow(/trailing/);
    expect(() => scanMsgpack(Uint8Array.from([0x81, 0x01, 0x01]), limits)).toThrow(/keys must be strings or bytes/);
    // A Date, a Set and a RegExp as msgpackr would write them are all extensions.
    const rich = new Packr({ moreTypes: true, structuredClone: true });
    for (const v of [new Date(0), new Set([1]), /x/, new Error('e'), 2n ** 70n]) {
      expect(() => decodeFrame(rich.pack({ v }))).toThrow(/extension type/);
    }
  });

  it('refuses declared lengths past the frame end without allocating, and deep nesting', () => {
    const limits = DEFAULT_WIRE_LIMITS;
    expect(() => scanMsgpack(Uint8Array.from([0xdb, 0xff, 0xff, 0xff, 0xff, 0x61]), { ...limits, maxStringBytes: 2 ** 33 })).toThrow(/runs past the end/);
    expect(() => scanMsgpack(Uint8Array.from([0xdd, 0xff, 0xff, 0xff, 0xff, 0x01]), limits)).toThrow(/cannot fit/);
    expect(() => scanMsgpack(Uint8Array.from([0xdf, 0x7f, 0xff, 0xff, 0xff, 0xa1, 0x61]), limits)).toThrow(/cannot fit/);
    const deep = Buffer.concat([Buffer.alloc(9, 0x91), Buffer.from([0x01])]);
    expect(() => scanMsgpack(deep, limits)).toThrow(/nesting deeper than 8/);
    expect(() => scanMsgpack(Buffer.concat([Buffer.alloc(8, 0x91), Buffer.from([0x01])]), limits)).not.toThrow();
  });

  it('refuses dtypes off the whitelist and shapes that disagree with the bytes', () => {
    for (const dtype of ['>f4', '|O', '<c8', '|V8', '<U5', 'object']) {
      expect(() => decodeFrame(plainPackr.pack({ __ndarray__: true, data: Buffer.alloc(8), dtype, shape: [2] }))).toThrow(/not accepted/);
    }
    expect(() => decodeFrame(plainPackr.pack({ __ndarray__: true, data: Buffer.alloc(8), dtype: '<f4', shape: [3] }))).toThrow(/needs 12 bytes, got 8/);
    expect(() => decodeFrame(plainPackr.pack({ __ndarray__: true, data: Buffer.alloc(8), dtype: '<f4', shape: [2], extra: 1 }))).toThrow(/unexpected key/);
  });
});

describe('observation keys', () => {
  it('maps the slash form and openpi short camera names to LeRobot keys', () => {
    const cameras = ['observation.images.top'];
    expect(policyKey('observation/top', cameras)).toBe('observation.images.top');
    expect(policyKey('observation/images/top', cameras)).toBe('observation.images.top');
    expect(policyKey('observation/state', cameras)).toBe('observation.state');
    expect(policyKey('prompt', cameras)).toBe('task');
    expect(policyKey('observation/top_padding_mask', cameras)).toBe('observation.images.top_padding_mask');
    expect(policyKey('image', cameras)).toBeNull();
  });

  it('turns a valid frame into a RobotObservation checked against the features', () => {
    const r = toRequest(decodeMap(validObservation()), SPEC);
    expect(Object.keys(r.observation).sort()).toEqual(['observation.images.top', 'observation.state', 'task']);
    expect(r.actionContext).toHaveLength(2);
    const spec: InputSpec = { ...SPEC, stateDim: 7 };
    expect(() => toRequest(decodeMap(validObservation()), spec)).toThrow(/observation\/state: expected 7 values/);
  });

  it("passes openpi ALOHA uint8 CHW frames through without a per-pixel loop (the planes are read natively)", () => {
    const planes = Uint8Array.from({ length: 2 * 3 * 4 * 5 }, (_, i) => i % 256);
    const frame = encodeFrame({
      'observation/top': ndarray(planes, [2, 3, 4, 5]),
      'observation/state': ndarray(new Float32Array(6), [6]),
      prompt: 'fold the towel',
    });
    const image = toRequest(decodeMap(frame), SPEC).observation['observation.images.top'];
    expect(image).toMatchObject({ height: 4, width: 5, channels: 3, frames: 2, layout: 'chw' });
    expect(Array.from((image as { data: Uint8Array }).data)).toEqual(Array.from(planes));
    const wrong = encodeFrame({ 'observation/top': ndarray(new Uint8Array(4 * 4 * 2), [4, 4, 2]), 'observation/state': ndarray(new Float32Array(6), [6]), prompt: 'x' });
    expect(() => toRequest(decodeMap(wrong), SPEC)).toThrow(/expected \[H, W, 3\] uint8 or \[3, H, W\] float32/);
  });

  it('rejects every malformed frame of the fuzz set without the network', () => {
    const frames = malformedFrames();
    expect(frames.length).toBeGreaterThanOrEqual(2000);
    let rejected = 0;
    for (const { frame } of frames) {
      try {
        toRequest(decodeMap(frame), SPEC);
      } catch (err) {
        expect((err as { code?: string }).code).toBe('ERR_SMOLVLA_PROTOCOL');
        rejected++;
      }
    }
    expect(rejected).toBe(frames.length);
  });
});
