/** Where a LeRobot dataset lives on disk; nothing is ever downloaded. */
import { existsSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SmolVLAError } from '../../errors';

/**
 * Folders to look in, in order: `root` alone when given; otherwise `$HF_LEROBOT_HOME/<repoId>`, then
 * LeRobot's default home (`$HF_HOME/lerobot`, else `~/.cache/huggingface/lerobot`) + `<repoId>`.
 */
export function candidateRoots(repoId: string, root?: string): string[] {
  if (root !== undefined) return [path.resolve(root)];
  const homes: string[] = [];
  const env = process.env;
  if (env.HF_LEROBOT_HOME) homes.push(env.HF_LEROBOT_HOME);
  homes.push(env.HF_HOME ? path.join(env.HF_HOME, 'lerobot') : path.join(os.homedir(), '.cache', 'huggingface', 'lerobot'));
  return [...new Set(homes.map((h) => path.resolve(expandHome(h), repoId)))];
}

function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') ? path.join(os.homedir(), p.slice(1)) : p;
}

export function checkRepoId(repoId: unknown): string {
  if (typeof repoId !== 'string' || repoId.length === 0 || path.isAbsolute(repoId) || repoId.split(/[\\/]/).includes('..')) {
    throw new SmolVLAError('ERR_SMOLVLA_IO', `repoId must be a relative dataset id such as 'lerobot/pusht', got ${JSON.stringify(repoId)}`);
  }
  return repoId;
}

/** The first candidate holding `meta/info.json`, or an error listing every folder tried. */
export function resolveDatasetRoot(repoId: string, root?: string): string {
  const tried = candidateRoots(repoId, root);
  const found = tried.find((dir) => existsSync(path.join(dir, 'meta', 'info.json')));
  if (found) return found;
  throw new SmolVLAError('ERR_SMOLVLA_IO',
    `LeRobot dataset '${repoId}' not found: no meta/info.json in ${tried.map((t) => `'${t}'`).join(', ')}. ` +
      'Pass root (--dataset.root) or set HF_LEROBOT_HOME to the folder holding <repo_id>/; datasets are never downloaded.',
  );
}
