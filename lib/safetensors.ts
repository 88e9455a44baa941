/**
 * safetensors files: checked reads and atomic writes, in C++ (native/io/safetensors.cc). Reads
 * follow the reference format rules (native/io/safetensors_header.h): offsets in order, contiguous
 * and covering the data exactly, byte lengths matching shape x dtype, string-only metadata; only
 * regular files are opened, and the data is read into memory rather than mapped, so a file
 * truncated by another process mid-use gives an error instead of a fatal SIGBUS.
 */
import { native } from './native';
import { argumentError } from './errors';
import { Tensor } from './tensor';
import { optionsArg, tensorArg } from './util/args';
import { pathArg } from './util/files';

export interface SafetensorsContent {
  tensors: Map<string, Tensor>;
  metadata: Record<string, string>;
}

/** Reads a file. A corrupt, truncated or non-regular file rejects with ERR_SMOLVLA_IO naming the problem. */
export async function readSafetensors(file: string): Promise<SafetensorsContent> {
  pathArg('file', file);
  const raw = await native.readSafetensors(file);
  const tensors = new Map<string, Tensor>();
  for (const [name, handle] of Object.entries(raw.tensors)) tensors.set(name, new Tensor(handle));
  return { tensors, metadata: raw.metadata };
}

/** Writes atomically (temporary file, fsync, rename): a crash leaves the old file or the new one. */
export async function writeSafetensors(
  file: string,
  tensors: Map<string, Tensor> | Record<string, Tensor>,
  metadata: Record<string, string> = {},
): Promise<void> {
  pathArg('file', file);
  if (tensors === null || typeof tensors !== 'object') throw argumentError('tensors', 'a Map or record of Tensors', tensors);
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  for (const [name, t] of entries) tensorArg(`tensors.${name}`, t);
  for (const [key, v] of Object.entries(optionsArg('metadata', metadata))) {
    if (typeof v !== 'string') throw argumentError(`metadata.${key}`, 'a string', v);
  }
  await native.writeSafetensors(
    file,
    entries.map(([name]) => name),
    entries.map(([, t]) => t.handle),
    metadata,
  );
}
