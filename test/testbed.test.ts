/**
 * Tests of the test bed itself: lib/scratch/scratchfs.ts really mounts ext4/XFS on direct-I/O
 * loop devices, cleans up after itself (also when interrupted or killed), and refuses to touch
 * anything that is not its own.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  makeScratchFs,
  ownsMount,
  registerCleanupOnExit,
  remountScratchFs,
  removeScratchFs,
  scratchAvailable,
  sweepStaleScratch,
  type ScratchFs,
} from '../lib/scratch/scratchfs';
import { requireLoop } from './helpers/scratch';

const REPO_ROOT = path.resolve(__dirname, '..');
const CHILD_FIXTURE = path.join(__dirname, 'fixtures', 'scratch-child.cjs');
const SCRATCH_DIST = path.join(REPO_ROOT, 'dist', 'scratch', 'scratchfs.js');

/* ---------------------------------------------------------------------------------------- */
/* Looking at kernel state independently of the library under test                          */
/* ---------------------------------------------------------------------------------------- */

interface ProcMount {
  source: string;
  mountpoint: string;
  fstype: string;
  options: string;
}

function procMounts(): ProcMount[] {
  return fs
    .readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [source = '', mountpoint = '', fstype = '', options = ''] = line.split(' ');
      const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
      return { source: unescape(source), mountpoint: unescape(mountpoint), fstype, options };
    });
}

function mountsAt(mountpoint: string): ProcMount[] {
  return procMounts().filter((m) => m.mountpoint === mountpoint);
}

function losetup(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const bin = ['/usr/sbin/losetup', '/sbin/losetup', '/usr/bin/losetup'].find((p) => fs.existsSync(p)) ?? 'losetup';
  const r = spawnSync(bin, args, { encoding: 'utf8', timeout: 15_000 });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** `losetup -nO BACK-FILE,DIO <loop>` → { backFile, dio }, or null if the loop is not attached. */
function loopInfo(loop: string): { backFile: string; dio: string } | null {
  const r = losetup(['-nO', 'BACK-FILE,DIO', loop]);
  if (r.status !== 0 || !r.stdout.trim()) return null;
  const m = /^(.*\S)\s+(\d)\s*$/.exec(r.stdout.trim());
  return m ? { backFile: m[1]!, dio: m[2]! } : null;
}

function loopsBackedBy(image: string): string[] {
  return losetup(['-a'])
    .stdout.split('\n')
    .filter((line) => line.includes(image));
}

function expectMounted(scratch: ScratchFs, fstype: string): void {
  const here = mountsAt(scratch.mountpoint!);
  expect(here, `${scratch.mountpoint} in /proc/mounts`).toHaveLength(1);
  expect(here[0]!.source).toBe(scratch.loop);
  expect(here[0]!.fstype).toBe(fstype);
  expect(loopInfo(scratch.loop)).toEqual({ backFile: scratch.image, dio: '1' });
  expect(ownsMount(scratch)).toBe(true);
}

function expectGone(scratch: { dir: string; image: string; loop: string; mountpoint?: string }): void {
  expect(loopsBackedBy(scratch.image), 'loops still backed by our image').toEqual([]);
  const sameLoop = loopInfo(scratch.loop);
  if (sameLoop) expect(sameLoop.backFile).not.toBe(scratch.image); // the number may be reused by others
  if (scratch.mountpoint) expect(mountsAt(scratch.mountpoint)).toEqual([]);
  expect(procMounts().filter((m) => m.mountpoint.startsWith(scratch.dir))).toEqual([]);
  expect(fs.existsSync(scratch.dir), `${scratch.dir} exists`).toBe(false);
}

/* ---------------------------------------------------------------------------------------- */
/* Child processes                                                                           */
/* ---------------------------------------------------------------------------------------- */

interface Child {
  scratch: ScratchFs;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
  kill(signal: NodeJS.Signals): void;
}

/** Starts the fixture child and resolves once it printed the scratch fs it made. */
function startChild(scratchJs: string, mode: 'wait' | 'throw' | 'exit', kind: 'ext4' | 'xfs' | 'raw', sizeMiB: number): Promise<Child> {
  const child = spawn(process.execPath, [CHILD_FIXTURE, mode, kind, String(sizeMiB)], {
    env: { ...process.env, ODIRECT_SCRATCH_JS: scratchJs },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, stderr })),
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`child printed nothing within 30s; stderr: ${stderr}`));
    }, 30_000);
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      const nl = stdout.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      resolve({ scratch: JSON.parse(stdout.slice(0, nl)) as ScratchFs, exited, kill: (s) => child.kill(s) });
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`child exited early (code ${code}, signal ${signal}): ${stderr}`));
    });
  });
}

/** The lib sources the child needs, relative to lib/: scratchfs and the mountinfo parser it imports. */
// lib/scratch (node built-ins only; shutdown.ts, which needs the addon, excepted) and mountinfo.
const CHILD_SOURCES = [
  ...fs.readdirSync(path.join(REPO_ROOT, 'lib', 'scratch'))
    .filter((f) => f.endsWith('.ts') && f !== 'shutdown.ts')
    .map((f) => `scratch/${f}`),
  'probe/mountinfo.ts',
];

/**
 * The child needs plain JS. Transpile the current lib sources into a temp dir laid out as lib/
 * (they only use node built-ins, so per-file transpiles are exact); ODIRECT_SCRATCH_JS overrides,
 * dist/ is the fallback if typescript cannot be loaded.
 */
async function compileScratchForChild(): Promise<{ file: string; tempDir?: string } | { skip: string }> {
  if (process.env['ODIRECT_SCRATCH_JS']) return { file: process.env['ODIRECT_SCRATCH_JS'] };
  try {
    const tsModule = await import('typescript');
    const ts = (tsModule as unknown as { default?: typeof tsModule }).default ?? tsModule;
    const tempDir = fs.mkdtempSync(path.join(os.tmpdir(), 'odirect-testbed-js-'));
    for (const source of CHILD_SOURCES) {
      const from = path.join(REPO_ROOT, 'lib', source);
      const out = ts.transpileModule(fs.readFileSync(from, 'utf8'), {
        compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
        fileName: from,
      });
      const to = path.join(tempDir, source.replace(/\.ts$/, '.js'));
      fs.mkdirSync(path.dirname(to), { recursive: true });
      fs.writeFileSync(to, out.outputText);
    }
    return { file: path.join(tempDir, 'scratch', 'scratchfs.js'), tempDir };
  } catch (e) {
    if (fs.existsSync(SCRATCH_DIST)) return { file: SCRATCH_DIST };
    return { skip: `cannot transpile scratchfs.ts (${(e as Error).message}) and ${SCRATCH_DIST} is not built` };
  }
}

/* ---------------------------------------------------------------------------------------- */
/* Tests                                                                                     */
/* ---------------------------------------------------------------------------------------- */

const availability = scratchAvailable();
const unavailableReason = availability.ok ? '' : availability.reason;
// If this worker dies mid-test (timeout, signal), what it made here goes with it.
if (availability.ok) registerCleanupOnExit();

if (!availability.ok && requireLoop()) {
  describe('scratch test bed', () => {
    it('needs loop devices (CI=true or ODIRECT_REQUIRE_LOOP=1 forbids skipping)', () => {
      throw new Error(`scratch filesystems unavailable: ${unavailableReason}`);
    });
  });
}

const describeBed = availability.ok ? describe : describe.skip;
const bedTitle = (title: string) => (availability.ok ? title : `${title} [skipped: ${unavailableReason}]`);

describeBed(bedTitle('scratch filesystems: make and remove'), () => {
  it('makes a mounted ext4 on a direct-I/O loop and removes it completely', async () => {
    const scratch = await makeScratchFs({ kind: 'ext4', sizeMiB: 64, label: 'testbed-ext4' });
    try {
      expect(path.dirname(scratch.dir)).toBe(fs.realpathSync(os.tmpdir()));
      expect(path.basename(scratch.dir)).toMatch(/^odirect-scratch-testbed-ext4-/);
      expect(scratch.mountpoint).toBe(path.join(scratch.dir, 'mnt'));
      expectMounted(scratch, 'ext4');
      expect(fs.statSync(scratch.mountpoint!).mode & 0o777).toBe(0o777);
      expect(fs.statSync(scratch.image).size).toBe(64 * 1024 * 1024);
      const marker = JSON.parse(fs.readFileSync(path.join(scratch.dir, 'odirect-scratch.json'), 'utf8'));
      expect(marker).toMatchObject({ pid: process.pid, kind: 'ext4', image: scratch.image, loop: scratch.loop, mountpoint: scratch.mountpoint });
      fs.writeFileSync(path.join(scratch.mountpoint!, 'hello'), 'world');
    } finally {
      await removeScratchFs(scratch);
    }
    expectGone(scratch);
    await removeScratchFs(scratch); // idempotent
  });

  it('makes a mounted XFS (300 MiB is the mkfs.xfs minimum) with reflink', async () => {
    const scratch = await makeScratchFs({ kind: 'xfs', sizeMiB: 300, label: 'testbed-xfs' });
    try {
      expectMounted(scratch, 'xfs');
      const xfsInfo = spawnSync('xfs_info', [scratch.mountpoint!], { encoding: 'utf8', timeout: 15_000 });
      if (xfsInfo.status === 0) expect(xfsInfo.stdout).toMatch(/reflink=1/);
    } finally {
      await removeScratchFs(scratch);
    }
    expectGone(scratch);
  });

  it('makes a raw loop device without filesystem or mount', async () => {
    const scratch = await makeScratchFs({ kind: 'raw', sizeMiB: 16, label: 'testbed-raw' });
    try {
      expect(scratch.mountpoint).toBeUndefined();
      expect(loopInfo(scratch.loop)).toEqual({ backFile: scratch.image, dio: '1' });
      expect(procMounts().filter((m) => m.source === scratch.loop)).toEqual([]);
      expect(ownsMount(scratch)).toBe(false); // nothing mounted
    } finally {
      await removeScratchFs(scratch);
    }
    expectGone(scratch);
  });

  it('remounts with other mount options and keeps the data', async () => {
    const scratch = await makeScratchFs({ kind: 'ext4', sizeMiB: 64, label: 'testbed-remount' });
    try {
      fs.writeFileSync(path.join(scratch.mountpoint!, 'kept'), 'data');
      await remountScratchFs(scratch, 'data=journal');
      expectMounted(scratch, 'ext4');
      expect(mountsAt(scratch.mountpoint!)[0]!.options).toMatch(/data=journal/);
      expect(scratch.mountOptions).toBe('data=journal');
      expect(fs.readFileSync(path.join(scratch.mountpoint!, 'kept'), 'utf8')).toBe('data');
      await remountScratchFs(scratch); // same options again
      expect(mountsAt(scratch.mountpoint!)[0]!.options).toMatch(/data=journal/);
      await remountScratchFs(scratch, '');
      expect(mountsAt(scratch.mountpoint!)[0]!.options).not.toMatch(/data=journal/);
      expect(scratch.mountOptions).toBeUndefined();
    } finally {
      await removeScratchFs(scratch);
    }
    expectGone(scratch);
  });

  it('cleans up a half-made fs when mkfs fails (XFS below its minimum size)', async () => {
    const label = `testbed-fail-${process.pid}`;
    await expect(makeScratchFs({ kind: 'xfs', sizeMiB: 64, label })).rejects.toThrow(/mkfs\.xfs.*(300|too small|larger)/s);
    const tmp = fs.realpathSync(os.tmpdir());
    expect(fs.readdirSync(tmp).filter((n) => n.startsWith(`odirect-scratch-${label}-`))).toEqual([]);
    expect(losetup(['-a']).stdout).not.toContain(`odirect-scratch-${label}-`);
  });
});

describeBed(bedTitle('scratch filesystems: interrupted and killed owners'), () => {
  let scratchJs = '';
  let tempDir: string | undefined;
  let skipReason = '';

  beforeAll(async () => {
    const compiled = await compileScratchForChild();
    if ('skip' in compiled) skipReason = compiled.skip;
    else ({ file: scratchJs, tempDir } = compiled);
  });
  afterAll(() => {
    if (tempDir) fs.rmSync(tempDir, { recursive: true, force: true });
  });

  const cases: Array<{ title: string; mode: 'wait' | 'throw' | 'exit'; signal?: NodeJS.Signals; expectExit: { code: number | null; signal: NodeJS.Signals | null } }> = [
    { title: 'SIGTERM', mode: 'wait', signal: 'SIGTERM', expectExit: { code: null, signal: 'SIGTERM' } },
    { title: 'SIGINT', mode: 'wait', signal: 'SIGINT', expectExit: { code: null, signal: 'SIGINT' } },
    { title: 'an uncaught exception', mode: 'throw', expectExit: { code: 1, signal: null } },
    { title: 'process.exit(3)', mode: 'exit', expectExit: { code: 3, signal: null } },
  ];

  for (const c of cases) {
    it(`a child removes its scratch fs on ${c.title} and still dies the usual way`, async (ctx) => {
      if (skipReason) ctx.skip(skipReason);
      const child = await startChild(scratchJs, c.mode, 'ext4', 32);
      if (c.signal) {
        expectMounted(child.scratch, 'ext4');
        child.kill(c.signal);
      }
      const exit = await child.exited;
      expect({ code: exit.code, signal: exit.signal }, exit.stderr).toEqual(c.expectExit);
      if (c.mode === 'throw') expect(exit.stderr).toContain('deliberate uncaught exception');
      expectGone(child.scratch);
    });
  }

  it('exit/signal handlers exist once per process, even with a second copy of the module loaded', (ctx) => {
    if (skipReason) ctx.skip(skipReason);
    const before = ['exit', 'SIGINT', 'SIGTERM', 'SIGHUP'].map((e) => process.listenerCount(e));
    const copy = require(scratchJs) as typeof import('../lib/scratch/scratchfs');
    copy.registerCleanupOnExit();
    registerCleanupOnExit();
    expect(['exit', 'SIGINT', 'SIGTERM', 'SIGHUP'].map((e) => process.listenerCount(e))).toEqual(before);
  });

  it('sweepStaleScratch() removes what a SIGKILLed child left, and nothing live', async (ctx) => {
    if (skipReason) ctx.skip(skipReason);
    const mine = await makeScratchFs({ kind: 'ext4', sizeMiB: 32, label: 'testbed-live' });
    try {
      const mounted = await startChild(scratchJs, 'wait', 'ext4', 32);
      const raw = await startChild(scratchJs, 'wait', 'raw', 16);
      for (const child of [mounted, raw]) {
        child.kill('SIGKILL');
        expect((await child.exited).signal).toBe('SIGKILL');
      }
      // SIGKILL cannot be handled: everything is still there.
      expectMounted(mounted.scratch, 'ext4');
      expect(loopInfo(raw.scratch.loop)?.backFile).toBe(raw.scratch.image);

      const removed = sweepStaleScratch();
      expect(removed).toEqual(
        expect.arrayContaining([
          `umount ${mounted.scratch.mountpoint} (${mounted.scratch.loop})`,
          `losetup -d ${mounted.scratch.loop} (${mounted.scratch.image})`,
          `rm -r ${mounted.scratch.dir}`,
          `losetup -d ${raw.scratch.loop} (${raw.scratch.image})`,
          `rm -r ${raw.scratch.dir}`,
        ]),
      );
      expectGone(mounted.scratch);
      expectGone(raw.scratch);

      // Live scratch filesystems (ours, and the shared ones of the vitest main process) survive.
      expectMounted(mine, 'ext4');
      const shared = inject('scratch');
      if (shared?.available) {
        for (const mp of [shared.ext4, shared.xfs, shared.ext4Journal, shared.tiny]) {
          expect(mountsAt(mp!), `shared ${mp}`).toHaveLength(1);
        }
        expect(loopInfo(shared.rawDevice!)).not.toBeNull();
      }
    } finally {
      await removeScratchFs(mine);
    }
  });
});

describeBed(bedTitle('scratch filesystems: refuses what is not its own'), () => {
  let real: ScratchFs;
  let other: ScratchFs;

  beforeAll(async () => {
    real = await makeScratchFs({ kind: 'ext4', sizeMiB: 32, label: 'testbed-real' });
    other = await makeScratchFs({ kind: 'raw', sizeMiB: 16, label: 'testbed-other' });
  });
  afterAll(async () => {
    if (other) await removeScratchFs(other);
    if (real) await removeScratchFs(real);
  });

  function expectNothingTouched(): void {
    expect(mountsAt('/').length).toBeGreaterThan(0);
    expectMounted(real, 'ext4');
    expect(loopInfo(other.loop)?.backFile).toBe(other.image);
  }

  it('ownsMount is false for a mountpoint of "/"', () => {
    expect(ownsMount({ ...real, mountpoint: '/' })).toBe(false);
    expect(ownsMount({ kind: 'ext4', dir: '/', image: '/', loop: real.loop, mountpoint: '/' })).toBe(false);
  });

  it("ownsMount is false when the loop's backing file is not the image", () => {
    expect(ownsMount({ ...real, loop: other.loop })).toBe(false);
    expect(ownsMount({ ...real, image: other.image })).toBe(false);
    expect(ownsMount(real)).toBe(true);
  });

  it('removeScratchFs and remountScratchFs refuse forged objects and unmount nothing', async () => {
    const forged: ScratchFs[] = [
      { ...real, mountpoint: '/' },
      { ...real, loop: other.loop },
      { ...real, image: other.image },
      { ...real, loop: '/dev/vda' },
      { ...other, kind: 'ext4', mountpoint: real.mountpoint! },
      { kind: 'ext4', dir: '/', image: '/image.img', loop: '/dev/loop0', mountpoint: '/mnt' },
      { kind: 'ext4', dir: '/tmp', image: '/tmp/image.img', loop: '/dev/loop0', mountpoint: '/tmp/mnt' },
    ];
    for (const f of forged) {
      await expect(removeScratchFs(f), JSON.stringify(f)).rejects.toThrow(/refusing/);
      await expect(remountScratchFs(f), JSON.stringify(f)).rejects.toThrow(/refusing|cannot remount/);
      expectNothingTouched();
    }
  });

  it('refuses a directory with our name but without our marker', async () => {
    const fake = fs.mkdtempSync(path.join(fs.realpathSync(os.tmpdir()), 'odirect-scratch-fake-'));
    try {
      const forged: ScratchFs = { kind: 'ext4', dir: fake, image: path.join(fake, 'image.img'), loop: real.loop, mountpoint: path.join(fake, 'mnt') };
      await expect(removeScratchFs(forged)).rejects.toThrow(/marker/);
      expect(fs.existsSync(fake)).toBe(true);
      expectNothingTouched();
    } finally {
      fs.rmSync(fake, { recursive: true, force: true });
    }
  });
});
