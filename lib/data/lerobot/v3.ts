/**
 * LeRobot v3.0 metadata: `meta/tasks.parquet` (task text as the pandas index), the episode index in
 * `meta/episodes/chunk-XXX/file-XXX.parquet` (row range, data file, and per camera the video file
 * and `from_timestamp`), statistics in `meta/stats.json` (else aggregated from the episodes' `stats/…`
 * columns). Many episodes share one data Parquet file and one MP4 per camera.
 */
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import * as path from 'node:path';

import { cellNumber, cellString, readParquet, type ParquetRow } from '../parquet';
import { aggregateStats, parseStats } from '../stats';
import type { Stats } from '../types';
import { formatTemplate, readJson, type DatasetInfo } from './info';
import type { DatasetLayout, EpisodeSource } from './layout';
import { SmolVLAError } from '../../errors';

export async function readV3Layout(root: string, info: DatasetInfo): Promise<DatasetLayout> {
  const meta = path.join(root, 'meta');
  const tasks = await readTasks(path.join(meta, 'tasks.parquet'));

  const videoKeys = Object.entries(info.features).filter(([, f]) => f.dtype === 'video').map(([k]) => k);
  if (videoKeys.length > 0 && !info.videoPath) {
    throw new SmolVLAError('ERR_SMOLVLA_IO', `${path.join(meta, 'info.json')}: features ${videoKeys.join(', ')} are videos but 'video_path' is not set`);
  }

  const episodeFiles = await listEpisodeFiles(path.join(meta, 'episodes'));
  const episodes: EpisodeSource[] = [];
  const rawEpisodeStats: Array<{ where: string; stats: Record<string, Record<string, unknown>> }> = [];
  for (const file of episodeFiles) {
    const { rows } = await readParquet(file);
    rows.forEach((row, r) => {
      const where = `${file} row ${r}`;
      const num = (key: string): number => cellNumber(field(row, key, where), `${where} '${key}'`);
      const videos: EpisodeSource['videos'] = {};
      for (const key of videoKeys) {
        const rel = formatTemplate(info.videoPath as string, {
          video_key: key,
          chunk_index: num(`videos/${key}/chunk_index`),
          file_index: num(`videos/${key}/file_index`),
        });
        videos[key] = { file: path.join(root, rel), fromTimestamp: num(`videos/${key}/from_timestamp`), shared: true };
      }
      const taskList = field(row, 'tasks', where);
      if (!Array.isArray(taskList)) throw new SmolVLAError('ERR_SMOLVLA_IO', `${where}: 'tasks' must be a list of strings`);
      const length = num('length');
      const span = num('dataset_to_index') - num('dataset_from_index');
      if (span !== length) {
        throw new SmolVLAError('ERR_SMOLVLA_IO', `${where}: 'length' is ${length} but dataset_to_index - dataset_from_index is ${span}`);
      }
      episodes.push({
        index: num('episode_index'),
        length,
        tasks: taskList.map((t, i) => cellString(t, `${where} tasks[${i}]`)),
        dataFile: path.join(
          root,
          formatTemplate(info.dataPath, { chunk_index: num('data/chunk_index'), file_index: num('data/file_index') }),
        ),
        videos,
      });
      const episodeStats = statsColumns(row);
      if (episodeStats) rawEpisodeStats.push({ where: `${where} stats/ columns`, stats: episodeStats });
    });
  }
  episodes.sort((a, b) => a.index - b.index);

  const statsFile = path.join(meta, 'stats.json');
  let stats: Record<string, Stats> | undefined;
  if (existsSync(statsFile)) stats = parseStats(await readJson(statsFile, 'dataset statistics'), statsFile);
  else if (rawEpisodeStats.length > 0) {
    const parts = rawEpisodeStats.map(({ where, stats: raw }) => parseStats(raw, where));
    stats = aggregateStats(parts, `${meta}/episodes stats/ columns`);
  }
  return { episodes, tasks, stats };
}

function field(row: ParquetRow, key: string, where: string): unknown {
  const value = row[key];
  if (value === undefined || value === null) throw new SmolVLAError('ERR_SMOLVLA_IO', `${where}: column '${key}' is missing or null`);
  return value;
}

/** The task text is the (unnamed) pandas index of LeRobot's tasks DataFrame. */
async function readTasks(file: string): Promise<Map<number, string>> {
  if (!existsSync(file)) throw new SmolVLAError('ERR_SMOLVLA_IO', `task list (meta/tasks.parquet) is missing: ${file} does not exist`);
  const { rows, columns, keyValue } = await readParquet(file);
  let textColumn: string | undefined;
  try {
    const pandas = JSON.parse(keyValue.pandas ?? '{}') as { index_columns?: unknown[] };
    const indexColumn = pandas.index_columns?.[0];
    if (typeof indexColumn === 'string') textColumn = indexColumn;
  } catch {
    // No usable pandas metadata: fall back to the conventional names below.
  }
  textColumn ??= ['task', '__index_level_0__'].find((c) => columns.includes(c));
  if (!textColumn || !columns.includes('task_index')) {
    throw new SmolVLAError('ERR_SMOLVLA_IO', `${file}: expected a 'task_index' column and the task text ('task' or the pandas index); found ${columns.join(', ')}`);
  }
  const tasks = new Map<number, string>();
  rows.forEach((row, r) => {
    tasks.set(
      cellNumber(row.task_index, `${file} row ${r} 'task_index'`),
      cellString(row[textColumn as string], `${file} row ${r} '${textColumn as string}'`),
    );
  });
  return tasks;
}

async function listEpisodeFiles(dir: string): Promise<string[]> {
  if (!existsSync(dir)) throw new SmolVLAError('ERR_SMOLVLA_IO', `episode index (meta/episodes/) is missing: ${dir} does not exist`);
  const files: string[] = [];
  for (const chunk of (await readdir(dir, { withFileTypes: true })).filter((d) => d.isDirectory())) {
    for (const name of await readdir(path.join(dir, chunk.name))) {
      if (name.endsWith('.parquet')) files.push(path.join(dir, chunk.name, name));
    }
  }
  if (files.length === 0) throw new SmolVLAError('ERR_SMOLVLA_IO', `episode index (meta/episodes/) has no chunk-XXX/file-XXX.parquet under ${dir}`);
  return files.sort();
}

/** `stats/<feature>/<name>` columns of one episode row, regrouped as `{feature: {name: value}}`. */
function statsColumns(row: ParquetRow): Record<string, Record<string, unknown>> | undefined {
  let out: Record<string, Record<string, unknown>> | undefined;
  for (const [key, value] of Object.entries(row)) {
    const m = /^stats\/(.+)\/([^/]+)$/.exec(key);
    if (!m || value === null || value === undefined) continue;
    out ??= {};
    (out[m[1] as string] ??= {})[m[2] as string] = value;
  }
  return out;
}
