/**
 * Choosing the native binary for the libtorch found (scripts/load-addon.js, scripts/libtorch.js):
 * version and flavour from each kind of libtorch install, prebuilds for two flavours side by side in
 * a package folder made here, the one message when nothing matches, the version check after
 * loading, and binaries without an RPATH. Loading runs in child processes (a fresh dynamic linker).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const repo = path.resolve(__dirname, '..', '..');
const built = path.join(repo, 'build', 'Release', 'smolvla_node.node');

interface TorchDescription {
  version: string | null;
  cuda: string | null;
  flavour: string;
  key: string;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const libtorch = require(path.join(repo, 'scripts', 'libtorch.js')) as {
  describeLibdir(libdir: string): TorchDescription;
  locate(): { libdir: string };
};

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'smolvla-prebuilds-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function write(file: string, text = ''): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
}

/**
 * A package folder holding the loader scripts and prebuilds for `keys`: the real binary under
 * `real`, placeholders elsewhere (binaries this machine must never pick, or that are never loaded).
 */
function packageWith(name: string, keys: string[], real?: string): string {
  const root = path.join(tmp, name);
  fs.cpSync(path.join(repo, 'scripts'), path.join(root, 'scripts'), { recursive: true });
  for (const key of keys) {
    const file = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, key, 'smolvla_node.node');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    if (key === real) fs.copyFileSync(built, file);
    else fs.writeFileSync(file, 'not a library');
  }
  return root;
}

/** Loads the package's addon in a child process; prints the chosen binary and a mask shape, or the error. */
function loadIn(root: string, env: NodeJS.ProcessEnv = {}): { ok: boolean; out: string } {
  const script = `
    try {
      const { addon, binary } = require(${JSON.stringify(path.join(root, 'scripts', 'load-addon.js'))}).loadAddon(${JSON.stringify(root)});
      const t = addon.tensorFromBuffer(new Uint8Array([1, 1]), [1, 2], 'bool');
      console.log(binary.kind + ' ' + binary.key + ' ' + addon.makeAtt2dMasks(t, t).shape.join('x'));
    } catch (err) { console.log(err.code + '\\n' + err.message); process.exit(3); }`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, ...env } });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}`.trim() };
}

describe('libtorch version and flavour', () => {
  it('reads a pip torch (version.py), a pytorch.org zip (build-version) and a runtime-only system install (file names)', () => {
    const pip = path.join(tmp, 'pip', 'torch');
    write(path.join(pip, 'version.py'), "__version__ = '2.4.1+cu121'\ncuda: Optional[str] = '12.1'\n");
    write(path.join(pip, 'lib', 'libtorch_cpu.so'));
    write(path.join(pip, 'lib', 'libtorch_cuda.so'));
    expect(libtorch.describeLibdir(path.join(pip, 'lib'))).toMatchObject({ version: '2.4.1', cuda: '12.1', flavour: 'cu121', key: 'torch-2.4-cu121' });

    const zip = path.join(tmp, 'zip', 'libtorch');
    write(path.join(zip, 'build-version'), '2.3.0+cpu\n');
    write(path.join(zip, 'lib', 'libtorch_cpu.so'));
    expect(libtorch.describeLibdir(path.join(zip, 'lib'))).toMatchObject({ version: '2.3.0', cuda: null, key: 'torch-2.3-cpu' });

    const cudaZip = path.join(tmp, 'zip-cu', 'libtorch');
    write(path.join(cudaZip, 'build-version'), '2.5.1+cu124\n');
    write(path.join(cudaZip, 'lib', 'libtorch_cuda.so'));
    expect(libtorch.describeLibdir(path.join(cudaZip, 'lib')).key).toBe('torch-2.5-cu124');

    const system = path.join(tmp, 'system', 'lib');
    write(path.join(system, 'libtorch_cpu.so.1.13'));
    expect(libtorch.describeLibdir(system)).toMatchObject({ version: '1.13', key: 'torch-1.13-cpu' });
  });

  it('describes the libtorch on this machine as the build recorded it', () => {
    const info = JSON.parse(fs.readFileSync(path.join(repo, 'build', 'torch-info.json'), 'utf8')) as { version: string };
    const here = libtorch.describeLibdir(libtorch.locate().libdir);
    expect(here.key.startsWith(`torch-${info.version.split('.').slice(0, 2).join('.')}-`)).toBe(true);
  });
});

describe('choosing a prebuild', () => {
  const here = () => libtorch.describeLibdir(libtorch.locate().libdir).key;

  it('loads the prebuild matching this libtorch from two flavours side by side', () => {
    const root = packageWith('two-flavours', [here(), 'torch-2.4-cu121'], here());
    const r = loadIn(root);
    expect(r.out).toBe(`prebuild ${here()} 1x2x2`);
    expect(r.ok).toBe(true);
  });

  it('says what was found, which prebuilds exist and the source-build command when none matches', () => {
    const root = packageWith('no-match', [here(), 'torch-2.4-cu121']);
    const fake = path.join(tmp, 'libtorch-2.5-cu124');
    write(path.join(fake, 'include', 'torch', 'version.h'));
    write(path.join(fake, 'build-version'), '2.5.1+cu124\n');
    write(path.join(fake, 'lib', 'libtorch_cuda.so'));
    const r = loadIn(root, { LIBTORCH: fake });
    expect(r.ok).toBe(false);
    expect(r.out).toContain('ERR_SMOLVLA_ADDON');
    expect(r.out).toContain('no native binary matches the libtorch on this machine');
    expect(r.out).toContain(`libtorch 2.5.1 (cu124) from LIBTORCH environment variable, libraries in ${path.join(fake, 'lib')}; needs a binary for torch-2.5-cu124`);
    expect(r.out).toContain(`Prebuilds for ${process.platform}-${process.arch}: ${[here(), 'torch-2.4-cu121'].sort().join(', ')}.`);
    expect(r.out).toContain('Local build: none.');
    expect(r.out).toContain(`cd ${root} && npm run build:native`);
  });

  it('gives the npm rebuild command for a package installed in a project', () => {
    const root = packageWith(path.join('project', 'node_modules', 'smolvla-node'), []);
    const r = loadIn(root);
    expect(r.out).toContain(`Prebuilds for ${process.platform}-${process.arch}: none.`);
    expect(r.out).toContain(`cd ${path.join(tmp, 'project')} && npm rebuild smolvla-node --foreground-scripts`);
  });

  it('refuses a binary compiled against another libtorch version even when its folder name matches', () => {
    // A libtorch folder that claims 2.4 but holds this machine's libraries: the 1.13 binary filed
    // under torch-2.4-cpu loads, then its compiled-in version gives it away.
    const claims = path.join(tmp, 'libtorch-claims-2.4');
    write(path.join(claims, 'include', 'torch', 'version.h'));
    write(path.join(claims, 'build-version'), '2.4.0+cpu\n');
    fs.mkdirSync(path.join(claims, 'lib'));
    const real = libtorch.locate().libdir;
    for (const f of fs.readdirSync(real).filter((n) => /^lib(c10|torch|torch_cpu)\.so/.test(n))) {
      fs.symlinkSync(path.join(real, f), path.join(claims, 'lib', f));
    }
    const root = packageWith('mislabelled', ['torch-2.4-cpu'], 'torch-2.4-cpu');
    const r = loadIn(root, { LIBTORCH: claims });
    expect(r.ok).toBe(false);
    expect(r.out).toMatch(/was compiled against libtorch 1\.13\.\d+ but runs on 2\.4\.0/);
  });
});

describe('binaries', () => {
  it('carry no RPATH or RUNPATH (they must not look for the build machine)', () => {
    const r = spawnSync('readelf', ['-d', built], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('(NEEDED)');
    expect(r.stdout).not.toMatch(/\((RPATH|RUNPATH)\)/);
  });
});
