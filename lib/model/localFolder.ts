/**
 * Checkpoints load from local folders only: nothing is downloaded. A path that does not exist but
 * looks like a Hugging Face Hub id (`owner/name`, e.g. `lerobot/smolvla_base`) gets a message that
 * says so and how to put the checkpoint on disk, instead of a bare ENOENT.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { SmolVLAError } from '../errors';

const HUB_ID = /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/;

/** The message for a Hub id given where a local folder is expected. */
export function hubIdMessage(what: string, id: string): string {
  const local = `./${id.split('/')[1]}`;
  return (
    `${what}: '${id}' is not a local folder and looks like a Hugging Face Hub id. This package loads local ` +
    `folders only (nothing is downloaded). On a machine with internet access run ` +
    `\`huggingface-cli download ${id} --local-dir ${local}\` (or \`hf download ${id} --local-dir ${local}\`), ` +
    `copy the folder here if needed, and pass ${local}`
  );
}

/** `dir` resolved, after checking it is an existing folder; an ERR_SMOLVLA_IO error otherwise. */
export async function checkpointFolder(dir: string, what = 'checkpoint'): Promise<string> {
  const stat = await fs.promises.stat(dir).catch(() => null);
  if (stat?.isDirectory()) return dir;
  if (!stat && HUB_ID.test(dir) && !path.isAbsolute(dir)) throw new SmolVLAError('ERR_SMOLVLA_IO', hubIdMessage(what, dir));
  throw new SmolVLAError('ERR_SMOLVLA_IO', `${what}: ${path.resolve(dir)} ${stat ? 'is not a folder' : 'does not exist'} (a LeRobot checkpoint folder holds config.json and model.safetensors)`);
}
