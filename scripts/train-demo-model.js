#!/usr/bin/env node
// npm run train:demo-model: regenerates the demo's built-in checkpoint (assets/demo-model) with the
// project's own train command, in the two stages of the delta-expert pipeline, on the demo
// simulator's scenes (--dataset.built_in=scenes) with the demo's model (--policy.preset=demo):
//   1. the action expert (the base policy, as a SmolVLA checkpoint is before delta training),
//   2. from that checkpoint (--policy.path), the delta expert, CLS head and VICReg loss.
// Fixed seeds and thread count: a rerun on one machine gives the same weights. The runs go to a
// temporary folder; the final checkpoint's loadable files (config, weights, processor files,
// tokenizer) and both runs' training reports and metrics are copied into the asset folder.
// train_config.json stays behind: it is for resuming the run and names the temporary folder.
// Usage: node scripts/train-demo-model.js [--out <dir>]   (default: the package's assets/demo-model)
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const root = path.resolve(__dirname, '..');
const cli = path.join(root, 'dist', 'lib', 'cli', 'main.js');
if (!fs.existsSync(cli)) {
  console.error('train-demo-model: dist/lib/cli/main.js is missing; run npm run build:ts first');
  process.exit(1);
}
const outFlag = process.argv.indexOf('--out');
const out = outFlag > 0 ? path.resolve(process.argv[outFlag + 1]) : path.join(root, 'assets', 'demo-model');

const COMMON = ['--dataset.built_in=scenes', '--batch_size=16', '--seed=0', '--num_threads=2', '--log_freq=10', '--eval_steps=100', '--max_eval_samples=64'];
const STAGES = [
  { name: 'action_expert', steps: 300, flags: ['--policy.preset=demo', '--policy.train_delta_expert=false'] },
  { name: 'delta', steps: 400, flags: ['--policy.path=<action_expert checkpoint>', '--policy.train_delta_expert=true'] },
];
/** The final checkpoint's files: everything the demo loads. */
const CHECKPOINT_FILES = [
  'config.json',
  'smolvla_node.json',
  'model.safetensors',
  'policy_preprocessor.json',
  'policy_preprocessor_step_5_normalizer_processor.safetensors',
  'policy_postprocessor.json',
  'policy_postprocessor_step_0_unnormalizer_processor.safetensors',
  'tokenizer.json',
  'tokenizer_config.json',
];
/** Each stage's report and metrics, under the names the asset folder gives them (the delta stage's are the checkpoint's own). */
const RUN_FILES = {
  action_expert: { 'training_report.html': 'training_report_action_expert.html', 'metrics.jsonl': 'metrics_action_expert.jsonl' },
  delta: { 'training_report.html': 'training_report.html', 'metrics.jsonl': 'metrics.jsonl' },
};

const run = fs.mkdtempSync(path.join(os.tmpdir(), 'smolvla-demo-model-'));
const pretrained = (stage) => path.join(run, stage, 'checkpoints', 'last', 'pretrained_model');
try {
  for (const stage of STAGES) {
    const flags = [...stage.flags, ...COMMON, `--steps=${stage.steps}`, `--save_freq=${stage.steps}`];
    console.log(`\nstage ${stage.name}: smolvla-node train ${flags.join(' ')} --output_dir=<temporary folder>`);
    const argv = flags.map((f) => (f.startsWith('--policy.path=') ? `--policy.path=${pretrained('action_expert')}` : f));
    const r = spawnSync(process.execPath, [cli, 'train', ...argv, `--output_dir=${path.join(run, stage.name)}`], { stdio: 'inherit' });
    if (r.status !== 0) {
      console.error(`train-demo-model: the train command (stage ${stage.name}) exited with ${r.status ?? r.signal}; ${out} is unchanged`);
      process.exit(1);
    }
  }
  const final = pretrained('delta');
  const missing = CHECKPOINT_FILES.filter((f) => !fs.existsSync(path.join(final, f)));
  const unknown = fs.readdirSync(final).filter((f) => f !== 'train_config.json' && !CHECKPOINT_FILES.includes(f));
  if (missing.length > 0 || unknown.length > 0) {
    // The checkpoint layout changed: update CHECKPOINT_FILES rather than ship a partial folder.
    console.error(`train-demo-model: the checkpoint's files differ from the expected ones (missing: ${missing.join(', ') || 'none'}; unexpected: ${unknown.join(', ') || 'none'}); ${out} is unchanged`);
    process.exit(1);
  }
  fs.mkdirSync(out, { recursive: true });
  const written = [];
  for (const f of CHECKPOINT_FILES) {
    fs.copyFileSync(path.join(final, f), path.join(out, f));
    written.push(f);
  }
  for (const [stage, files] of Object.entries(RUN_FILES)) {
    for (const [from, to] of Object.entries(files)) {
      fs.copyFileSync(path.join(run, stage, from), path.join(out, to));
      written.push(to);
    }
  }
  const bytes = written.reduce((n, f) => n + fs.statSync(path.join(out, f)).size, 0);
  console.log(`demo model written to ${out} (${(bytes / 1e6).toFixed(1)} MB)`);
} finally {
  fs.rmSync(run, { recursive: true, force: true });
}
