/**
 * odirect as a dependency: the prebuild's glibc baseline, the errno-name table that replaced
 * strerrorname_np, and the packed tarball installed into a fresh project with no compiler on
 * PATH, loaded with require and import, doing a round trip on a real file.
 */
import { spawn, spawnSync, type SpawnOptions, type SpawnSyncOptions } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(__dirname, '..');
const GLIBC_BASELINE = [2, 28] as const; // RHEL 8 and kin, the floor of Node 20's own binaries

function run(cmd: string, args: string[], opts: SpawnSyncOptions = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 400_000, maxBuffer: 64 << 20, ...opts });
  if (r.error) throw r.error;
  return { status: r.status, stdout: String(r.stdout), stderr: String(r.stderr) };
}

function mustRun(cmd: string, args: string[], opts: SpawnSyncOptions = {}): string {
  const r = run(cmd, args, opts);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}:\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`);
  return r.stdout;
}

/** Like mustRun, without blocking the worker (vitest's RPC times out during a long spawnSync). */
function mustRunAsync(cmd: string, args: string[], opts: SpawnOptions = {}): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 600_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve({ stdout, stderr });
      else reject(Object.assign(new Error(`${cmd} ${args.join(' ')} exited ${code}:\n${stdout.slice(-3000)}\n${stderr.slice(-3000)}`), { stdout, stderr }));
    });
  });
}

/** Every versioned symbol the shared object imports, e.g. ['GLIBC_2.2.5', 'GCC_3.0']. */
function importedVersions(sharedObject: string): string[] {
  const out = mustRun('objdump', ['-T', sharedObject]);
  const versions = new Set<string>();
  for (const line of out.split('\n')) {
    if (!line.includes('*UND*')) continue;
    const m = /\(([A-Z]+_[0-9.]+)\)/.exec(line) ?? /\s([A-Z]+_[0-9.]+)\s/.exec(line);
    if (m) versions.add(m[1]!);
  }
  return [...versions];
}

function versionNumbers(tag: string): number[] {
  return tag.replace(/^[A-Z]+_/, '').split('.').map(Number);
}

function newerThan(v: readonly number[], base: readonly number[]): boolean {
  for (let i = 0; i < Math.max(v.length, base.length); i++) {
    const a = v[i] ?? 0;
    const b = base[i] ?? 0;
    if (a !== b) return a > b;
  }
  return false;
}

function checkBaseline(sharedObject: string): void {
  const versions = importedVersions(sharedObject);
  expect(versions.some((v) => v.startsWith('GLIBC_'))).toBe(true); // objdump parsed something
  const tooNew = versions.filter((v) => v.startsWith('GLIBC_') && newerThan(versionNumbers(v), GLIBC_BASELINE));
  expect(tooNew, `${sharedObject} needs glibc symbols newer than 2.28`).toEqual([]);
  // libstdc++ is linked in: nothing may be imported from the system's.
  expect(versions.filter((v) => v.startsWith('GLIBCXX_') || v.startsWith('CXXABI_'))).toEqual([]);
  const needed = mustRun('objdump', ['-p', sharedObject])
    .split('\n')
    .filter((l) => l.includes('NEEDED'))
    .map((l) => l.trim().split(/\s+/)[1]);
  expect(needed.filter((n) => !/^(libc|libgcc_s|libm|ld-linux[-\w]*)\.so/.test(n!))).toEqual([]);
}

describe('the addon built here', () => {
  it('imports no glibc symbol newer than 2.28 and no libstdc++ or liburing at all', () => {
    const addon = path.join(ROOT, 'build', 'Release', 'odirect.node');
    checkBaseline(addon);
    const needed = mustRun('objdump', ['-p', addon]);
    expect(needed).not.toMatch(/liburing|libstdc\+\+/);
  });

  it('names every errno as strerrorname_np does', () => {
    // Compiled against this machine's glibc, which has strerrorname_np (2.32+).
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'odirect-errno-'));
    try {
      const main = path.join(dir, 'main.cc');
      fs.writeFileSync(
        main,
        `#include <cstdio>
#include <cstring>
#include "errno_names.h"
int main() {
  int checked = 0, wrong = 0;
  for (int e = 1; e < 4096; e++) {
    const char* ours = odirect::ErrnoName(e);
    const char* libc = strerrorname_np(e);
    if ((ours == nullptr) != (libc == nullptr) || (ours && std::strcmp(ours, libc) != 0)) {
      std::printf("%d ours=%s libc=%s\\n", e, ours ? ours : "-", libc ? libc : "-");
      wrong++;
    }
    if (libc) checked++;
  }
  std::printf("checked %d\\n", checked);
  return wrong ? 1 : 0;
}
`,
      );
      const bin = path.join(dir, 'main');
      mustRun('g++', ['-std=c++17', '-D_GNU_SOURCE', '-I', path.join(ROOT, 'native'), '-o', bin, main, path.join(ROOT, 'native', 'errno_names.cc')]);
      const r = run(bin, []);
      expect(r.stdout).toMatch(/^checked \d+\n$/m);
      expect(r.status, r.stdout).toBe(0);
      expect(Number(/checked (\d+)/.exec(r.stdout)![1])).toBeGreaterThan(120);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('npm scripts', () => {
  it('no script is a pre- or post-hook of another (npm run build must not also make prebuilds)', () => {
    const scripts = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    const hooks = Object.keys(scripts).filter((name) => {
      const m = /^(pre|post)(.+)$/.exec(name);
      return m !== null && m[2]! in scripts;
    });
    expect(hooks).toEqual([]);
    expect(scripts['build:prebuild']).toBe('prebuildify --napi --tag-libc --strip');
    expect(scripts['prepare']).toMatch(/build:ts/);
    expect(scripts['prepack']).toMatch(/build:ts.*check-pack/);
  });
});

describe('an install with neither a prebuild nor a build', () => {
  it('says what to do, as an OdirectError', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'odirect-nobuild-'));
    try {
      fs.cpSync(path.join(ROOT, 'dist'), path.join(dir, 'dist'), { recursive: true });
      fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(dir, 'package.json'));
      fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
      const r = run(process.execPath, [
        '-e',
        `try { require('./dist/index.js') } catch (e) { console.log(JSON.stringify({ name: e.name, code: e.code, message: e.message })) }`,
      ], { cwd: dir });
      const err = JSON.parse(r.stdout) as { name: string; code: string; message: string };
      expect(err).toMatchObject({ name: 'OdirectError', code: 'ERR_NATIVE_ADDON_MISSING' });
      expect(err.message).toMatch(/^No native build was found for platform=linux arch=/);
      expect(err.message).toContain('npm rebuild odirect');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('npm pack, then install with no compiler', () => {
  let work = '';
  let tarball = '';
  let prebuild = '';

  beforeAll(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'odirect-pack-'));
    // A copy of the working tree (tracked and new files, not build output), so that the
    // prebuild's node-gyp rebuild cannot disturb the addon other test files are using.
    const src = path.join(work, 'src');
    const files = mustRun('git', ['ls-files', '-co', '--exclude-standard', '-z'], { cwd: ROOT }).split('\0').filter(Boolean);
    for (const f of files) {
      const from = path.join(ROOT, f);
      if (!fs.existsSync(from)) continue; // deleted in the working tree
      fs.mkdirSync(path.dirname(path.join(src, f)), { recursive: true });
      fs.copyFileSync(from, path.join(src, f));
    }
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(src, 'node_modules'));

    // Without prebuilds, npm pack refuses.
    const refused = await mustRunAsync('npm', ['pack', '--pack-destination', work], { cwd: src }).then(
      () => ({ stderr: 'npm pack succeeded' }),
      (err: { stderr: string }) => err,
    );
    expect(refused.stderr).toContain('refusing to pack');
    expect(refused.stderr).toContain('no glibc prebuild');
    expect(fs.readdirSync(work).filter((f) => f.endsWith('.tgz'))).toEqual([]);

    await mustRunAsync('npm', ['run', 'build:prebuild'], { cwd: src });
    const dir = path.join(src, 'prebuilds', 'linux-x64');
    prebuild = path.join(dir, fs.readdirSync(dir).find((f) => f.endsWith('.node'))!);
    await mustRunAsync('npm', ['pack', '--pack-destination', work], { cwd: src });
    tarball = path.join(work, fs.readdirSync(work).find((f) => f.endsWith('.tgz'))!);
  }, 900_000);

  afterAll(() => {
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it('the prebuild is tagged glibc and imports nothing newer than glibc 2.28', () => {
    expect(path.basename(prebuild)).toMatch(/\.glibc\.node$/);
    checkBaseline(prebuild);
  });

  it('the tarball holds dist, the prebuild and the vendored liburing with its licence', () => {
    const list = mustRun('tar', ['-tzf', tarball]).split('\n');
    for (const f of [
      'package/dist/index.js',
      'package/dist/index.mjs',
      'package/dist/index.d.ts',
      'package/dist/cli.js',
      `package/prebuilds/linux-x64/${path.basename(prebuild)}`,
      'package/deps/liburing/LICENSE',
      'package/deps/liburing/src/include/liburing.h',
      'package/binding.gyp',
    ]) {
      expect(list).toContain(f);
    }
  });

  it('installs into a fresh project with only node, npm and sh on PATH, and works by require and import', async () => {
    const bin = path.join(work, 'bin');
    fs.mkdirSync(bin);
    fs.symlinkSync(process.execPath, path.join(bin, 'node'));
    const npmCli = fs.realpathSync(mustRun('sh', ['-c', 'command -v npm']).trim());
    fs.symlinkSync(npmCli, path.join(bin, 'npm'));
    fs.symlinkSync('/bin/sh', path.join(bin, 'sh')); // npm runs scripts with sh
    const env = { HOME: os.homedir(), PATH: bin };
    // No compiler, make or python can be found: a source build would fail.
    expect(run('/bin/sh', ['-c', 'command -v cc || command -v gcc || command -v g++ || command -v make || command -v python3'], { env }).status).not.toBe(0);

    const app = path.join(work, 'app');
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
    await mustRunAsync('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball], { cwd: app, env });
    expect(fs.existsSync(path.join(app, 'node_modules', 'odirect', 'build'))).toBe(false); // nothing compiled

    const file = path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), `odirect-pack-${process.pid}`);
    try {
      const roundTrip = (load: string) => `
        ${load}
        const page = alignedBuffer(4096);
        for (let i = 0; i < page.length; i++) page[i] = (i * 7 + 3) & 0xff;
        const file = await open(${JSON.stringify(file)}, { create: true, truncate: true });
        const w = await file.write(page, 4096);
        const back = alignedBuffer(4096);
        const bytesRead = await file.read(back, 4096);
        await file.close();
        const onDisk = require('node:fs').readFileSync(${JSON.stringify(file)});
        console.log(JSON.stringify({ written: w.bytesWritten, read: bytesRead, same: Buffer.compare(back, page) === 0,
          size: onDisk.length, disk: Buffer.compare(onDisk.subarray(4096), page) === 0 }));`;
      const cjs = run('node', ['-e', `(async () => { const { open, alignedBuffer } = require('odirect'); ${roundTrip('')} })()`], { cwd: app, env });
      expect(cjs.stderr).toBe('');
      expect(JSON.parse(cjs.stdout)).toEqual({ written: 4096, read: 4096, same: true, size: 8192, disk: true });
      fs.rmSync(file, { force: true });

      const esm = run(
        'node',
        [
          '--input-type=module',
          '-e',
          `import { createRequire } from 'node:module'; const require = createRequire(process.cwd() + '/');
           import { open, alignedBuffer } from 'odirect';
           import * as ns from 'odirect';
           if (require('odirect').open !== open) throw new Error('import and require load different instances');
           const missing = Object.keys(require('odirect')).filter((k) => !(k in ns));
           if (missing.length) throw new Error('not exported to import: ' + missing);
           ${roundTrip('')}`,
        ],
        { cwd: app, env },
      );
      expect(esm.stderr).toBe('');
      expect(JSON.parse(esm.stdout)).toEqual({ written: 4096, read: 4096, same: true, size: 8192, disk: true });
    } finally {
      fs.rmSync(file, { force: true });
    }

    const cli = run(path.join(app, 'node_modules', '.bin', 'odirect'), ['probe', os.tmpdir()], { cwd: app, env });
    expect(cli.status, cli.stderr).toBe(0);
    expect(JSON.parse(cli.stdout).ioUring).toHaveProperty('available');
  });
});

describe('npm ci on a clean clone, with the system liburing hidden', () => {
  const root = process.getuid?.() === 0;
  const unshare = run('sh', ['-c', 'command -v unshare']).status === 0;
  const committed = run('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT }).stdout === '';
  // It clones HEAD: uncommitted changes would not be what it checks.
  const reason = !root ? 'needs root (a private mount namespace)' : !unshare ? 'needs unshare(1)' : !committed ? 'the checkout has uncommitted changes (it clones HEAD)' : null;
  it.skipIf(reason !== null)(`builds the addon from deps/liburing, probe() finds io_uring, the tree stays clean${reason ? ` [skipped: ${reason}]` : ''}`, async () => {
    const { stdout } = await mustRunAsync('bash', [path.join(ROOT, 'scripts', 'check-clean-install.sh')], { cwd: ROOT });
    expect(stdout).toContain('check-clean-install: system liburing hidden');
    expect(stdout).toContain('check-clean-install: probe().ioUring = {"available":true}');
    expect(stdout).toContain('check-clean-install: ok');
  }, 900_000);
});
