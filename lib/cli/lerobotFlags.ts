/**
 * Flags of LeRobot's `lerobot-train` that its tutorials use but that have no meaning here. They are
 * accepted, so a command copied from LeRobot's docs runs, and each prints one warning line saying
 * why it is ignored.
 */
import type { FlagSpec, FlagValue } from './flags';

const IGNORED: ReadonlyArray<{ name: string; type: FlagSpec['type']; why: string }> = [
  { name: 'job_name', type: 'string', why: 'runs are named by --output_dir' },
  { name: 'wandb.enable', type: 'bool', why: 'no Weights & Biases logging; metrics go to <output_dir>/metrics.jsonl and training_report.html' },
  { name: 'wandb.project', type: 'string', why: 'no Weights & Biases logging' },
  { name: 'wandb.entity', type: 'string', why: 'no Weights & Biases logging' },
  { name: 'wandb.mode', type: 'string', why: 'no Weights & Biases logging' },
  { name: 'wandb.notes', type: 'string', why: 'no Weights & Biases logging' },
  { name: 'wandb.disable_artifact', type: 'bool', why: 'no Weights & Biases logging' },
  { name: 'policy.push_to_hub', type: 'bool', why: 'nothing is uploaded; checkpoints stay in --output_dir (upload them with huggingface-cli upload)' },
  { name: 'policy.repo_id', type: 'string', why: 'nothing is uploaded to the Hub' },
  { name: 'policy.use_amp', type: 'bool', why: 'training runs in float32' },
  { name: 'policy.compile_model', type: 'bool', why: 'there is no torch.compile in libtorch' },
  { name: 'num_workers', type: 'string', why: 'video decoding runs in ffmpeg processes, prefetching one batch ahead' },
  { name: 'eval_freq', type: 'string', why: 'there are no simulation environments; held-out evaluation is --eval_steps' },
  { name: 'env.type', type: 'string', why: 'there are no simulation environments' },
  { name: 'eval.n_episodes', type: 'string', why: 'there are no simulation environments' },
  { name: 'eval.batch_size', type: 'string', why: 'there are no simulation environments' },
  { name: 'dataset.video_backend', type: 'string', why: 'videos are always decoded with ffmpeg' },
  { name: 'use_policy_training_preset', type: 'bool', why: "the policy's optimizer and scheduler presets are always used" },
];

/** Specs that make the parser accept the ignored flags. */
export const IGNORED_LEROBOT_FLAGS: readonly FlagSpec[] = IGNORED.map(({ name, type, why }) => ({ name, type, help: `accepted for LeRobot compatibility and ignored: ${why}` }));

/** One warning line per ignored flag given; removes them from `values`. */
export function takeIgnoredFlags(values: Map<string, FlagValue>): string[] {
  const lines: string[] = [];
  for (const { name, why } of IGNORED) {
    if (!values.has(name)) continue;
    lines.push(`warning: --${name} is ignored here (${why})`);
    values.delete(name);
  }
  return lines;
}
