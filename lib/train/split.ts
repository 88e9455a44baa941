/**
 * Held-out episodes for evaluation (LeRobot's `dataset.eval_split`: a fraction of the episodes, spread
 * over the tasks). Both parts are views of the same dataset: positions are the episodes' frames,
 * in the dataset's episode order, and every sample read is checked to come from the right side.
 */
import type { Dataset, DatasetSample, EpisodeInfo } from '../data';
import { SmolVLAError } from '../errors';

export interface EpisodeSplit {
  train: Dataset;
  /** Null when eval_split is 0. */
  heldOut: Dataset | null;
  /** Episode indices held out. */
  heldOutEpisodes: number[];
}

class EpisodeView implements Dataset {
  readonly length: number;

  constructor(
    private readonly base: Dataset,
    readonly episodes: EpisodeInfo[],
    private readonly positions: Uint32Array,
    private readonly part: string,
  ) {
    this.length = positions.length;
  }

  get repoId(): string {
    return this.base.repoId;
  }
  get fps(): number {
    return this.base.fps;
  }
  get cameraKeys(): string[] {
    return this.base.cameraKeys;
  }
  get stateDim(): number {
    return this.base.stateDim;
  }
  get actionDim(): number {
    return this.base.actionDim;
  }
  get features(): Dataset['features'] {
    return this.base.features;
  }
  /** The whole dataset's statistics: normalisation does not depend on the split. */
  get stats(): Dataset['stats'] {
    return this.base.stats;
  }

  async get(index: number): Promise<DatasetSample> {
    if (!Number.isInteger(index) || index < 0 || index >= this.length) {
      throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `${this.part} split of '${this.repoId}': index must be an integer in [0, ${this.length}), got ${index}`);
    }
    const sample = await this.base.get(this.positions[index] as number);
    if (!this.episodes.some((e) => e.index === sample.episodeIndex)) {
      throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT',
        `${this.part} split of '${this.repoId}': position ${this.positions[index]} holds episode ${sample.episodeIndex}, ` +
          'but the dataset does not store its frames in episode order, which the eval split relies on (use --dataset.eval_split=0)',
      );
    }
    return sample;
  }

  /** A view owns nothing: whoever opened the base dataset closes it. */
  async close(): Promise<void> {}
}

function view(base: Dataset, chosen: EpisodeInfo[], part: string): Dataset {
  const starts = new Map<number, number>();
  let at = 0;
  for (const e of base.episodes) {
    starts.set(e.index, at);
    at += e.length;
  }
  const positions: number[] = [];
  for (const e of chosen) {
    const start = starts.get(e.index) as number;
    for (let k = 0; k < e.length; k++) positions.push(start + k);
  }
  return new EpisodeView(base, chosen, Uint32Array.from(positions), part);
}

/**
 * Holds out max(1, round(episodes * evalSplit)) episodes (none when evalSplit is 0): tasks are
 * visited in turn, each giving up its last episode not yet taken, so every task keeps training data
 * for as long as possible.
 */
export function splitEpisodes(ds: Dataset, evalSplit: number): EpisodeSplit {
  if (!(evalSplit >= 0 && evalSplit < 1)) throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `eval_split must be in [0, 1), got ${evalSplit}`);
  const total = ds.episodes.reduce((n, e) => n + e.length, 0);
  if (total !== ds.length) {
    throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `dataset '${ds.repoId}': its episodes list ${total} frames but it has ${ds.length}; cannot split by episode`);
  }
  if (evalSplit === 0) return { train: ds, heldOut: null, heldOutEpisodes: [] };
  const count = Math.max(1, Math.round(ds.episodes.length * evalSplit));
  if (count >= ds.episodes.length) {
    throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `eval_split ${evalSplit} would hold out all ${ds.episodes.length} episodes of '${ds.repoId}'; lower it or set it to 0`);
  }
  const byTask = new Map<string, EpisodeInfo[]>();
  for (const e of ds.episodes) {
    const task = e.tasks[0] ?? '';
    byTask.set(task, [...(byTask.get(task) ?? []), e]);
  }
  const queues = [...byTask.values()];
  const held = new Set<number>();
  for (let turn = 0; held.size < count; turn++) {
    const q = queues[turn % queues.length] as EpisodeInfo[];
    const e = q.pop();
    if (e) held.add(e.index);
  }
  const heldOut = ds.episodes.filter((e) => held.has(e.index));
  const train = ds.episodes.filter((e) => !held.has(e.index));
  return { train: view(ds, train, 'train'), heldOut: view(ds, heldOut, 'held-out'), heldOutEpisodes: heldOut.map((e) => e.index) };
}
