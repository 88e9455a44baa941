/** Flag parsing (draccus style), help, usage errors, and every flag of the seeds' command reaching the run. */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { closestFlag, convertFlag, parseFlags, type FlagSpec } from '../../lib/cli/flags';
import { RUN_FLAGS, runTrain, trainHelp } from '../../lib/cli/train';
import { CONFIG_FIELD_NAMES, camelToSnake } from '../../lib/config';
import { captureIO, tempDir } from './helpers';

const SPECS: FlagSpec[] = [
  { name: 'steps', type: 'int', default: 5, help: '' },
  { name: 'policy.vicreg_weight', type: 'number', default: 0.01, help: '' },
  { name: 'policy.use_cls_head', type: 'bool', default: false, help: '' },
  { name: 'dataset.repo_id', type: 'string', help: '' },
  { name: 'policy.optimizer_betas', type: 'json', default: [0.9, 0.95], help: '' },
];

describe('parseFlags', () => {
  test('--flag=value and --flag value, later occurrences win', () => {
    const { values } = parseFlags(['--steps=3', '--policy.vicreg_weight', '0.5', '--dataset.repo_id', 'a/b', '--steps', '7'], SPECS);
    expect(Object.fromEntries(values)).toEqual({ steps: 7, 'policy.vicreg_weight': 0.5, 'dataset.repo_id': 'a/b' });
  });

  test('booleans: True/False/true/false/1/0, and a bare flag is true', () => {
    for (const [raw, v] of [['True', true], ['False', false], ['true', true], ['false', false], ['1', true], ['0', false]] as const) {
      expect(parseFlags([`--policy.use_cls_head=${raw}`], SPECS).values.get('policy.use_cls_head')).toBe(v);
      expect(parseFlags(['--policy.use_cls_head', raw], SPECS).values.get('policy.use_cls_head')).toBe(v);
    }
    expect(parseFlags(['--policy.use_cls_head', '--steps=1'], SPECS).values.get('policy.use_cls_head')).toBe(true);
    expect(() => parseFlags(['--policy.use_cls_head=yes please'], SPECS)).toThrow('--policy.use_cls_head: expected a boolean');
  });

  test('numbers, integers and JSON values (Python tuples accepted) are type-checked', () => {
    expect(parseFlags(['--policy.vicreg_weight=1e-3'], SPECS).values.get('policy.vicreg_weight')).toBe(0.001);
    expect(parseFlags(['--policy.optimizer_betas=(0.8, 0.9)'], SPECS).values.get('policy.optimizer_betas')).toEqual([0.8, 0.9]);
    expect(parseFlags(['--policy.optimizer_betas', '[0.5,0.6]'], SPECS).values.get('policy.optimizer_betas')).toEqual([0.5, 0.6]);
    expect(() => parseFlags(['--steps=1.5'], SPECS)).toThrow('--steps: expected an integer, received "1.5"');
    expect(() => parseFlags(['--steps=abc'], SPECS)).toThrow('--steps: expected an integer');
    expect(() => parseFlags(['--policy.vicreg_weight=x'], SPECS)).toThrow('--policy.vicreg_weight: expected a finite number');
    expect(() => parseFlags(['--policy.optimizer_betas=[1,'], SPECS)).toThrow('--policy.optimizer_betas: expected a JSON value');
    expect(() => parseFlags(['--steps'], SPECS)).toThrow('--steps: missing value');
    expect(convertFlag({ name: 'x', type: 'number', help: '' }, '-2.5')).toBe(-2.5);
  });

  test('unknown flags name the flag and suggest the closest known one', () => {
    expect(() => parseFlags(['--stpes=3'], SPECS)).toThrow('unknown flag --stpes; did you mean --steps?');
    expect(() => parseFlags(['--use_cls_head=True'], SPECS)).toThrow('did you mean --policy.use_cls_head?');
    expect(() => parseFlags(['--dataset.repoid=x'], SPECS)).toThrow('did you mean --dataset.repo_id?');
    expect(() => parseFlags(['--completely_unrelated_thing=1'], SPECS)).toThrow(/^unknown flag --completely_unrelated_thing \(see --help\)$/);
    expect(() => parseFlags(['positional'], SPECS)).toThrow('unexpected argument "positional"');
    expect(closestFlag('policy.vicreg_lamda', ['policy.vicreg_lambda', 'policy.vicreg_mu'])).toBe('policy.vicreg_lambda');
  });

  test('--help wins over anything else', () => {
    expect(parseFlags(['--stpes=1', '--help'], SPECS).help).toBe(true);
  });
});

describe('smolvla-node train: command line', () => {
  test('--help lists every flag with its type and default', async () => {
    const c = captureIO();
    expect(await runTrain(['--help'], c.io)).toBe(0);
    const help = c.out();
    expect(help).toBe(trainHelp());
    for (const f of RUN_FLAGS) expect(help).toContain(`--${f.name}=<${f.type}>`);
    for (const field of CONFIG_FIELD_NAMES) expect(help).toContain(`--policy.${camelToSnake(field)}=<`);
    expect(help).toMatch(/--batch_size=<int>\s+samples per update \(default: 8\)/);
    expect(help).toMatch(/--policy\.use_cls_head=<bool>.*\(default: False\)/);
    expect(help).toMatch(/--policy\.num_vlm_layers=<number>.*\(default: 16\)/);
    expect(help).toMatch(/--job_name=<string>\s+accepted for LeRobot compatibility and ignored/);
    expect(help).toMatch(/--policy\.vicreg_lambda=<number>.*\(default: 25\)/);
    expect(help).toMatch(/--steps=<int>.*\(default: 100000\)/);
  });

  test('usage errors exit with 2 and say what is wrong', async () => {
    const cases: Array<[string[], string]> = [
      [['--policy.use_cls_heads=True'], 'unknown flag --policy.use_cls_heads; did you mean --policy.use_cls_head?'],
      [['--batch_size=eight'], '--batch_size: expected an integer, received "eight"'],
      [['--policy.type=act'], '--policy.type: only "smolvla" is supported'],
      [['--steps=0'], '--steps: expected a positive integer, got 0'],
      [['--resume=true'], '--resume=true needs --config_path'],
      [['--config_path=x'], '--config_path is read only with --resume=true'],
      [['--policy.preset=huge'], '--policy.preset: expected tiny or demo or smolvla'],
      [['--dataset.built_in=cubes'], '--dataset.built_in: expected blocks or scenes, got "cubes"'],
      [['--dataset.built_in=scenes', '--dataset.repo_id=a/b'], '--dataset.built_in names a built-in dataset: give it or --dataset.repo_id, not both'],
      [['--policy.preset=demo', '--dataset.repo_id=a/b', `--output_dir=${path.join(tempDir('usage'), 'run5')}`], "--policy.preset=demo is the demo's built-in model for the built-in demo data"],
      [['--dataset.eval_split=1'], '--dataset.eval_split: expected a fraction in [0, 1)'],
      [['--policy.preset=tiny', '--policy.num_cls_prefix=1', `--output_dir=${path.join(tempDir('usage'), 'run')}`], 'invalid policy configuration'],
      [[`--output_dir=${path.join(tempDir('usage'), 'run2')}`], 'without --dataset.repo_id the built-in demo data is used: pass --policy.preset=tiny'],
      [['--policy.preset=tiny', '--dataset.repo_id=a/b', `--output_dir=${path.join(tempDir('usage'), 'run3')}`], '--policy.preset=tiny is the toy model for the built-in demo data'],
      [['--policy.path=lerobot/smolvla_base', '--dataset.repo_id=a/b', `--output_dir=${path.join(tempDir('usage'), 'run4')}`], 'huggingface-cli download lerobot/smolvla_base --local-dir ./smolvla_base'],
    ];
    for (const [argv, message] of cases) {
      const c = captureIO();
      expect({ argv, code: await runTrain(argv, c.io) }).toEqual({ argv, code: 2 });
      expect(c.err()).toContain(message);
    }
  });

  test('an existing non-empty output_dir is refused unless resuming', async () => {
    const dir = tempDir('exists');
    fs.writeFileSync(path.join(dir, 'something'), 'x');
    const c = captureIO();
    expect(await runTrain(['--policy.preset=tiny', `--output_dir=${dir}`, '--steps=1'], c.io)).toBe(2);
    expect(c.err()).toContain('already exists and is not empty');
  });

  test("the seeds' lerobot-train command parses; only the dataset is missing (nothing is downloaded)", async () => {
    const home = tempDir('home');
    const saved = process.env.HF_LEROBOT_HOME;
    process.env.HF_LEROBOT_HOME = home;
    try {
      const c = captureIO();
      const argv = [
        '--policy.type=smolvla',
        '--policy.train_delta_expert=True',
        '--policy.use_cls_head=True',
        '--policy.num_cls_prefix=2',
        '--policy.num_cls_suffix=2',
        '--policy.vicreg_weight=0.01',
        '--policy.vicreg_lambda=25.0',
        '--policy.vicreg_mu=25.0',
        '--policy.vicreg_nu=1.0',
        '--policy.cls_noise_scale=0.01',
        '--dataset.repo_id=your_dataset',
        '--batch_size=64',
        '--steps=200000',
        `--output_dir=${path.join(home, 'run')}`,
        // LeRobot's tutorial flags that do not apply here: one warning line each.
        '--job_name=my_smolvla',
        '--wandb.enable=true',
        '--policy.push_to_hub=false',
        '--num_workers=8',
        '--eval_freq=20000',
        '--policy.repo_id=me/my_policy',
      ];
      expect(await runTrain(argv, c.io)).toBe(1);
      for (const flag of ['job_name', 'wandb.enable', 'policy.push_to_hub', 'num_workers', 'eval_freq', 'policy.repo_id']) {
        expect(c.err().split('\n').filter((l) => l.startsWith(`warning: --${flag} is ignored here (`))).toHaveLength(1);
      }
      expect(c.err()).toContain(`LeRobot dataset 'your_dataset' not found: no meta/info.json in '${path.join(home, 'your_dataset')}'`);
    } finally {
      if (saved === undefined) delete process.env.HF_LEROBOT_HOME;
      else process.env.HF_LEROBOT_HOME = saved;
    }
  });

  test('every listed flag reaches the run (train_config.json, config.json, metrics)', async () => {
    const out = path.join(tempDir('flags'), 'run');
    const c = captureIO();
    const argv = [
      '--policy.type', 'smolvla',
      '--policy.preset=tiny',
      '--policy.train_delta_expert=True',
      '--policy.use_cls_head=true',
      '--policy.num_cls_prefix=3',
      '--policy.num_cls_suffix=3',
      '--policy.vicreg_weight=0.02',
      '--policy.vicreg_lambda=20',
      '--policy.vicreg_mu=21',
      '--policy.vicreg_nu=2',
      '--policy.cls_noise_scale', '0.05',
      '--policy.optimizer_lr=5e-4',
      '--policy.scheduler_warmup_steps=1',
      '--batch_size=4',
      '--steps=3',
      `--output_dir=${out}`,
      '--save_freq=2',
      '--log_freq=1',
      '--seed=7',
      '--dataset.eval_split=0.25',
      '--max_eval_samples=6',
    ];
    expect(await runTrain(argv, c.io)).toBe(0);
    const ckpt = path.join(out, 'checkpoints', '000003', 'pretrained_model');
    const config = JSON.parse(fs.readFileSync(path.join(ckpt, 'config.json'), 'utf8'));
    expect(config).toMatchObject({
      type: 'smolvla',
      train_delta_expert: true,
      use_cls_head: true,
      num_cls_prefix: 3,
      num_cls_suffix: 3,
      vicreg_weight: 0.02,
      vicreg_lambda: 20,
      vicreg_mu: 21,
      vicreg_nu: 2,
      cls_noise_scale: 0.05,
      optimizer_lr: 5e-4,
      scheduler_warmup_steps: 1,
    });
    const tc = JSON.parse(fs.readFileSync(path.join(ckpt, 'train_config.json'), 'utf8'));
    expect(tc).toMatchObject({ batch_size: 4, steps: 3, seed: 7, save_freq: 2, log_freq: 1, max_eval_samples: 6, dataset: { repo_id: null, eval_split: 0.25 } });
    expect(fs.readdirSync(path.join(out, 'checkpoints')).sort()).toEqual(['000002', '000003', 'last']);
    const lines = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.filter((l) => l.kind === 'train').map((l) => l.step)).toEqual([1, 2, 3]);
    expect(lines.filter((l) => l.kind === 'eval')).toEqual([expect.objectContaining({ step: 3, samples: 6 })]);
    expect(c.out()).toMatch(/^step 1\/3 lr=/m);
    expect(c.out()).toContain('held out 2 episode(s) for evaluation');
    expect(c.err()).toContain('warning: batch size 4 < 32');

    // Resuming keeps the run's configuration: a changed setting is refused, naming both values.
    const r = captureIO();
    const resume = ['--resume=true', `--config_path=${path.join(ckpt, 'train_config.json')}`];
    // batch_size may change with the number of processes; the samples per update may not.
    expect(await runTrain([...resume, '--batch_size=16'], r.io)).toBe(1);
    expect(r.err()).toContain('used a batch of 4 samples per update, this run has 16');
    expect(await runTrain([...resume, '--policy.vicreg_mu=3'], r.io)).toBe(2);
    expect(r.err()).toContain('--policy.vicreg_mu=3 differs from the resumed run\'s 21');
  });

  test("--dataset.built_in=scenes trains on the demo simulator's scenes; the choice is saved and a resumed run keeps it", async () => {
    const out = path.join(tempDir('scenes'), 'run');
    const c = captureIO();
    const argv = ['--policy.preset=tiny', '--dataset.built_in=scenes', '--steps=2', '--batch_size=2', '--log_freq=1', '--save_freq=2', '--dataset.eval_split=0', `--output_dir=${out}`];
    expect(await runTrain(argv, c.io)).toBe(0);
    expect(c.out()).toContain('training the delta expert: 2880 frames, batch 2, 2 steps');
    const saved = JSON.parse(fs.readFileSync(path.join(out, 'checkpoints', 'last', 'pretrained_model', 'train_config.json'), 'utf8'));
    expect(saved.dataset).toEqual(expect.objectContaining({ repo_id: null, built_in: 'scenes' }));
    const r = captureIO();
    expect(await runTrain(['--resume=true', `--output_dir=${out}`, '--steps=3'], r.io)).toBe(0);
    expect(r.out()).toContain('2880 frames');
    expect(await runTrain(['--resume=true', `--output_dir=${out}`, '--steps=4', '--dataset.built_in=blocks'], r.io)).toBe(2);
    expect(r.err()).toContain('--dataset.built_in="blocks" differs from the resumed run\'s "scenes"');
  });

  test('on a TTY: a progress bar with loss and steps/s; --save_checkpoint=false and --eval_steps', async () => {
    const out = path.join(tempDir('tty'), 'run');
    const c = captureIO(true);
    const argv = ['--policy.preset=tiny', '--steps=3', '--batch_size=2', '--log_freq=1', '--eval_steps=2', '--max_eval_samples=4', '--save_checkpoint=false', `--output_dir=${out}`];
    expect(await runTrain(argv, c.io)).toBe(0);
    expect(c.out()).toMatch(/train \|.*\| 3\/3 \| loss [0-9.]+ \| [0-9.]+ steps\/s \| lr /);
    expect(c.out()).not.toMatch(/^step 1\/3/m);
    expect(fs.existsSync(path.join(out, 'checkpoints'))).toBe(false);
    const lines = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.filter((l) => l.kind === 'eval').map((l) => l.step)).toEqual([2, 3]);
    expect(c.out()).toContain('done: 3 steps; report');
  });
});
