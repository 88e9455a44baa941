/** `meta/info.json` and the small JSON helpers of LeRobot's metadata. */
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';

import type { FeatureSpec } from '../types';
import { SmolVLAError } from '../../errors';

export type LayoutVersion = 'v2' | 'v3';

export interface DatasetInfo {
  codebaseVersion: string;
  layout: LayoutVersion;
  fps: number;
  features: Record<string, FeatureSpec>;
  dataPath: string;
  videoPath: string | null;
  chunksSize: number;
  totalEpisodes: number;
  totalFrames: number;
}

export async function readJson(file: string, what: string): Promise<unknown> {
  const text = await readMetaFile(file, what);
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new SmolVLAError('ERR_SMOLVLA_IO', `${what} ${file} is not valid JSON: ${(err as Error).message}`);
  }
}

/** One JSON object per non-empty line. */
export async function readJsonLines(file: string, what: string): Promise<Array<Record<string, unknown>>> {
  const text = await readMetaFile(file, what);
  return text
    .split('\n')
    .map((line, i) => ({ line: line.trim(), i }))
    .filter(({ line }) => line.length > 0)
    .map(({ line, i }) => {
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch (err) {
        throw new SmolVLAError('ERR_SMOLVLA_IO', `${what} ${file} line ${i + 1} is not valid JSON: ${(err as Error).message}`);
      }
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        throw new SmolVLAError('ERR_SMOLVLA_IO', `${what} ${file} line ${i + 1}: expected a JSON object`);
      }
      return value as Record<string, unknown>;
    });
}

async function readMetaFile(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') throw new SmolVLAError('ERR_SMOLVLA_IO', `${what} is missing: ${file} does not exist`);
    throw new SmolVLAError('ERR_SMOLVLA_IO', `cannot read ${what} ${file}: ${e.message}`);
  }
}

export function requireField<T>(obj: Record<string, unknown>, key: string, check: (v: unknown) => v is T, expected: string, where: string): T {
  const value = obj[key];
  if (!check(value)) throw new SmolVLAError('ERR_SMOLVLA_IO', `${where}: field '${key}' must be ${expected}, got ${JSON.stringify(value)}`);
  return value;
}

export const isString = (v: unknown): v is string => typeof v === 'string';
export const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;
export const isPositive = (v: unknown): v is number => typeof v === 'number' && v > 0;

/** Python's str.format for LeRobot's path templates: `{name}` and `{name:03d}`. */
export function formatTemplate(template: string, values: Record<string, string | number>): string {
  return template.replace(/\{(\w+)(?::0?(\d*)d)?\}/g, (_match, name: string, width: string | undefined) => {
    const value = values[name];
    if (value === undefined) throw new SmolVLAError('ERR_SMOLVLA_IO', `path template '${template}' uses {${name}}, which is not known here`);
    if (typeof value === 'number' && width) return String(value).padStart(Number(width), '0');
    return String(value);
  });
}

export async function readInfo(root: string): Promise<DatasetInfo> {
  const file = path.join(root, 'meta', 'info.json');
  const raw = await readJson(file, 'dataset info');
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new SmolVLAError('ERR_SMOLVLA_IO', `${file}: expected a JSON object`);
  const info = raw as Record<string, unknown>;
  const codebaseVersion = requireField(info, 'codebase_version', isString, 'a version string such as "v2.1"', file);
  const major = /^v?(\d+)\./.exec(codebaseVersion)?.[1];
  if (major !== '2' && major !== '3') {
    throw new SmolVLAError('ERR_SMOLVLA_IO', `${file}: codebase_version ${codebaseVersion} is not supported (expected v2.x or v3.0); convert it with LeRobot`);
  }
  const featuresRaw = info.features;
  if (typeof featuresRaw !== 'object' || featuresRaw === null || Array.isArray(featuresRaw)) {
    throw new SmolVLAError('ERR_SMOLVLA_IO', `${file}: field 'features' must be an object of feature specs`);
  }
  const features: Record<string, FeatureSpec> = {};
  for (const [key, spec] of Object.entries(featuresRaw as Record<string, unknown>)) {
    const s = spec as Record<string, unknown> | null;
    if (!s || typeof s.dtype !== 'string' || !Array.isArray(s.shape) || !s.shape.every((d) => Number.isInteger(d))) {
      throw new SmolVLAError('ERR_SMOLVLA_IO', `${file}: feature '${key}' needs a string 'dtype' and an integer array 'shape', got ${JSON.stringify(spec)}`);
    }
    features[key] = { ...s, dtype: s.dtype, shape: s.shape as number[] };
  }
  const videoPath = info.video_path;
  if (videoPath !== null && videoPath !== undefined && typeof videoPath !== 'string') {
    throw new SmolVLAError('ERR_SMOLVLA_IO', `${file}: field 'video_path' must be a path template or null, got ${JSON.stringify(videoPath)}`);
  }
  return {
    codebaseVersion,
    layout: major === '2' ? 'v2' : 'v3',
    fps: requireField(info, 'fps', isPositive, 'a positive number', file),
    features,
    dataPath: requireField(info, 'data_path', isString, 'a path template', file),
    videoPath: videoPath ?? null,
    chunksSize: info.chunks_size === undefined ? 1000 : requireField(info, 'chunks_size', isPositive, 'a positive integer', file),
    totalEpisodes: requireField(info, 'total_episodes', isCount, 'a non-negative integer', file),
    totalFrames: requireField(info, 'total_frames', isCount, 'a non-negative integer', file),
  };
}
