/**
 * File-system helpers that cannot hang or be tricked: paths with NUL bytes are refused (Node would
 * otherwise throw a raw TypeError, and C code would silently cut the path at the NUL); files are
 * opened non-blocking and read only when they are regular files of bounded size (a FIFO named
 * config.json would otherwise block a read forever); folders are created one level at a time, so a
 * path under a pseudo file system such as /proc fails at once instead of looping in a recursive mkdir.
 */
import { closeSync, constants, fstatSync, openSync, promises as fsp, readFileSync, type Stats } from 'node:fs';
import * as path from 'node:path';

import { argumentError, SmolVLAError } from '../errors';

/** A JSON file larger than this is refused before it is read (configs are a few kilobytes). */
export const MAX_JSON_BYTES = 64 * 1024 * 1024;

/** `value` as a path: a non-empty string without NUL bytes, else an ERR_SMOLVLA_ARGUMENT naming `name`. */
export function pathArg(name: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) throw argumentError(name, 'a non-empty path string', value);
  if (value.includes('\0')) throw argumentError(name, 'a path without NUL bytes', value);
  return value;
}

function ioError(file: string, what: string, cause?: unknown): SmolVLAError {
  return new SmolVLAError('ERR_SMOLVLA_IO', `${file}: ${what}`, cause === undefined ? undefined : { cause });
}

// O_NONBLOCK: open() of a FIFO without a writer returns at once instead of waiting for one.
const READ_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY;

function checkRegular(file: string, stat: Stats, maxBytes: number): void {
  if (!stat.isFile()) throw ioError(file, 'not a regular file (a FIFO, device or folder is never read)');
  if (stat.size > maxBytes) throw ioError(file, `${stat.size} bytes, more than the ${maxBytes}-byte limit`);
}

function openError(file: string, e: unknown): SmolVLAError {
  return ioError(file, `cannot open: ${(e as Error).message}`, e);
}

function parseJson(file: string, bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8')) as unknown;
  } catch (e) {
    throw ioError(file, `not valid JSON: ${(e as Error).message}`, e);
  }
}

/** The bytes of a regular file of at most maxBytes; ERR_SMOLVLA_IO naming the file otherwise. */
export async function readRegularFile(file: string, maxBytes: number): Promise<Buffer> {
  pathArg('file', file);
  const handle = await fsp.open(file, READ_FLAGS).catch((e: unknown) => {
    throw openError(file, e);
  });
  try {
    checkRegular(file, await handle.stat(), maxBytes);
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}

/** readRegularFile for synchronous callers. */
export function readRegularFileSync(file: string, maxBytes: number): Buffer {
  pathArg('file', file);
  let fd: number;
  try {
    fd = openSync(file, READ_FLAGS);
  } catch (e) {
    throw openError(file, e);
  }
  try {
    checkRegular(file, fstatSync(fd), maxBytes);
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** A parsed JSON file (regular, at most MAX_JSON_BYTES); ERR_SMOLVLA_IO naming the file otherwise. */
export async function readJsonFile(file: string, maxBytes = MAX_JSON_BYTES): Promise<unknown> {
  return parseJson(file, await readRegularFile(file, maxBytes));
}

/** readJsonFile for synchronous callers. */
export function readJsonFileSync(file: string, maxBytes = MAX_JSON_BYTES): unknown {
  return parseJson(file, readRegularFileSync(file, maxBytes));
}

/** Deepest folder chain makeDirectory creates (far beyond any real layout; stops runaway paths). */
const MAX_NEW_LEVELS = 64;

/**
 * Creates `dir` and missing parents like `mkdir -p`, but one non-recursive mkdir per level from the
 * nearest existing ancestor down: each call either succeeds or fails with the system's error.
 */
export async function makeDirectory(dir: string): Promise<void> {
  const target = path.resolve(pathArg('dir', dir));
  const missing: string[] = [];
  let current = target;
  for (;;) {
    const stat = await fsp.stat(current).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return null;
      throw ioError(current, `cannot inspect: ${e.message}`, e);
    });
    if (stat) {
      if (!stat.isDirectory()) throw ioError(current, 'exists and is not a folder');
      break;
    }
    missing.push(current);
    if (missing.length > MAX_NEW_LEVELS) throw ioError(target, `more than ${MAX_NEW_LEVELS} missing folder levels`);
    const parent = path.dirname(current);
    if (parent === current) break;
    current = parent;
  }
  for (const folder of missing.reverse()) {
    try {
      await fsp.mkdir(folder);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST' && (await fsp.stat(folder)).isDirectory()) continue;
      throw ioError(folder, `cannot create the folder: ${(e as Error).message}`, e);
    }
  }
}
