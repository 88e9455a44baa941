/**
 * LeRobot v2.x metadata: `meta/episodes.jsonl`, `meta/tasks.jsonl`, statistics in
 * `meta/episodes_stats.jsonl` (v2.1, aggregated here as LeRobot does) or `meta/stats.json` (v2.0); one
 * Parquet file per episode and one MP4 per episode and camera, located by the info.json templates.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';

import { aggregateStats, parseStats } from '../stats';
import type { Stats } from '../types';
import { formatTemplate, isCount, readJson, readJsonLines, requireField, type DatasetInfo } from './info';
import type { DatasetLayout, EpisodeSource } from './layout';
import { SmolVLAError } from '../../errors';

const isStringList = (v: unknown): v is string[] => Array.isArray(v) && v.every((t) => typeof t === 'string');

export async function readV2Layout(root: string, info: DatasetInfo): Promise<DatasetLayout> {
  const meta = path.join(root, 'meta');
  const episodesFile = path.join(meta, 'episodes.jsonl');
  const tasksFile = path.join(meta, 'tasks.jsonl');

  const tasks = new Map<number, string>();
  for (const [i, row] of (await readJsonLines(tasksFile, 'task list (meta/tasks.jsonl)')).entries()) {
    const where = `${tasksFile} line ${i + 1}`;
    const taskIndex = requireField(row, 'task_index', isCount, 'a non-negative integer', where);
    tasks.set(taskIndex, requireField(row, 'task', (v): v is string => typeof v === 'string', 'a string', where));
  }

  const videoKeys = Object.entries(info.features).filter(([, f]) => f.dtype === 'video').map(([k]) => k);
  if (videoKeys.length > 0 && !info.videoPath) {
    throw new SmolVLAError('ERR_SMOLVLA_IO', `${path.join(meta, 'info.json')}: features ${videoKeys.join(', ')} are videos but 'video_path' is not set`);
  }

  const rows = await readJsonLines(episodesFile, 'episode list (meta/episodes.jsonl)');
  const episodes: EpisodeSource[] = rows.map((row, i) => {
    const where = `${episodesFile} line ${i + 1}`;
    const index = requireField(row, 'episode_index', isCount, 'a non-negative integer', where);
    const chunk = Math.floor(index / info.chunksSize);
    const videos: EpisodeSource['videos'] = {};
    for (const key of videoKeys) {
      const rel = formatTemplate(info.videoPath as string, { episode_chunk: chunk, video_key: key, episode_index: index });
      videos[key] = { file: path.join(root, rel), fromTimestamp: 0, shared: false };
    }
    return {
      index,
      length: requireField(row, 'length', isCount, 'a non-negative integer', where),
      tasks: requireField(row, 'tasks', isStringList, 'a list of task strings', where),
      dataFile: path.join(root, formatTemplate(info.dataPath, { episode_chunk: chunk, episode_index: index })),
      videos,
    };
  });
  episodes.sort((a, b) => a.index - b.index);

  return { episodes, tasks, stats: await readV2Stats(meta) };
}

async function readV2Stats(meta: string): Promise<Record<string, Stats> | undefined> {
  const perEpisode = path.join(meta, 'episodes_stats.jsonl');
  if (existsSync(perEpisode)) {
    const lines = await readJsonLines(perEpisode, 'episode statistics (meta/episodes_stats.jsonl)');
    const parts = lines.map((line, i) => parseStats(line.stats, `${perEpisode} line ${i + 1}`));
    return parts.length > 0 ? aggregateStats(parts, perEpisode) : undefined;
  }
  const whole = path.join(meta, 'stats.json');
  if (existsSync(whole)) return parseStats(await readJson(whole, 'dataset statistics'), whole);
  return undefined;
}
