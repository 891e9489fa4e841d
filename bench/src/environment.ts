// The machine and its tools: what is installed, versions, mounts, page-cache residency.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** The package root: one level above lib/ (sources under vitest) and dist/ (compiled). */
export const PACKAGE_ROOT = path.resolve(__dirname, '..', '..');

const SYSTEM_BIN_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

export function findTool(name: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), ...SYSTEM_BIN_DIRS];
  for (const dir of dirs) {
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

function run(file: string, args: string[], timeoutMs = 10_000): { ok: boolean; stdout: string; stderr: string } {
  const r = spawnSync(file, args, { encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, LC_ALL: 'C' } });
  return { ok: r.status === 0 && !r.error, stdout: r.stdout ?? '', stderr: r.stderr ?? (r.error ? r.error.message : '') };
}

/** liburing as vendored in deps/liburing: the C reference compiles its sources in. */
export const VENDORED_LIBURING = path.join(PACKAGE_ROOT, 'deps', 'liburing', 'src');
export const VENDORED_LIBURING_SOURCES = ['setup.c', 'queue.c', 'register.c', 'syscall.c', 'version.c'].map((f) =>
  path.join(VENDORED_LIBURING, f),
);

/** "2.9", from the vendored io_uring_version.h; null when deps/liburing is missing. */
export function vendoredLiburingVersion(): string | null {
  try {
    const h = fs.readFileSync(path.join(VENDORED_LIBURING, 'include', 'liburing', 'io_uring_version.h'), 'utf8');
    const major = /IO_URING_VERSION_MAJOR\s+(\d+)/.exec(h)?.[1];
    const minor = /IO_URING_VERSION_MINOR\s+(\d+)/.exec(h)?.[1];
    return major && minor ? `${major}.${minor}` : null;
  } catch {
    return null;
  }
}

export interface ToolReport {
  fio: string | null;
  cc: string | null;
  /** deps/liburing/src when the vendored liburing is there. */
  liburing: string | null;
  fincore: string | null;
  missing: string[];
}

export function checkTools(): ToolReport {
  const fio = findTool('fio');
  const cc = findTool('cc') ?? findTool('gcc');
  const liburing = VENDORED_LIBURING_SOURCES.every((f) => fs.existsSync(f)) ? VENDORED_LIBURING : null;
  const missing: string[] = [];
  if (!fio) missing.push('fio');
  if (!cc) missing.push('cc');
  if (!liburing) missing.push('deps/liburing');
  return { fio, cc, liburing, fincore: findTool('fincore'), missing };
}

/**
 * Runs scripts/install-deps.sh (installs fio, xfsprogs, … with apt-get as root;
 * idempotent). Returns what it said, or why it did not run.
 */
export function installMissing(log: (line: string) => void): { ran: boolean; ok: boolean; message: string } {
  const script = path.join(PACKAGE_ROOT, 'scripts', 'install-deps.sh');
  if (!fs.existsSync(script)) return { ran: false, ok: false, message: `${script} not found` };
  log(`installing what is missing: bash ${path.relative(process.cwd(), script) || script}`);
  const r = spawnSync('bash', [script], { encoding: 'utf8', timeout: 15 * 60_000, stdio: ['ignore', 'pipe', 'pipe'] });
  const message = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim();
  return { ran: true, ok: r.status === 0, message };
}

export function fioVersion(fio: string | null): { version: string | null; major: number; minor: number } {
  if (!fio) return { version: null, major: 0, minor: 0 };
  const r = run(fio, ['--version']);
  const version = r.stdout.trim() || null;
  const m = /fio-(\d+)\.(\d+)/.exec(version ?? '');
  return { version, major: m ? Number(m[1]) : 0, minor: m ? Number(m[2]) : 0 };
}

function firstLine(text: string): string | null {
  const line = text.split('\n')[0]?.trim();
  return line ? line : null;
}

export interface MachineInfo {
  hostname: string;
  kernel: string;
  kernelVersion: string;
  arch: string;
  cpuModel: string | null;
  cpus: number;
  memoryMiB: number;
  node: string;
  odirect: string | null;
  fio: { path: string | null; version: string | null };
  cc: string | null;
  liburing: string | null;
  uvThreadpool: ThreadpoolInfo;
}

export interface ThreadpoolInfo {
  /** UV_THREADPOOL_SIZE as the bench found it. */
  envBefore: string | null;
  /** What the bench set it to. */
  requested: number;
  /** Threads the pool started with, counted when the bench started it; null if it was already running. */
  started: number | null;
  note: string;
}

export function machineInfo(tools: ToolReport, threadpool: ThreadpoolInfo): MachineInfo {
  let cpuModel: string | null = null;
  try {
    cpuModel = /^model name\s*:\s*(.*)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? null;
  } catch {
    // not Linux
  }
  let odirectVersion: string | null = null;
  try {
    odirectVersion = (JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version?: string }).version ?? null;
  } catch {
    // no package.json
  }
  return {
    hostname: os.hostname(),
    kernel: os.release(),
    kernelVersion: os.version(),
    arch: os.arch(),
    cpuModel,
    cpus: os.cpus().length,
    memoryMiB: Math.round(os.totalmem() / 2 ** 20),
    node: process.version,
    odirect: odirectVersion,
    fio: { path: tools.fio, version: fioVersion(tools.fio).version },
    cc: tools.cc ? firstLine(run(tools.cc, ['--version']).stdout) : null,
    liburing: tools.liburing ? `${vendoredLiburingVersion() ?? 'unknown version'} (vendored)` : null,
    uvThreadpool: threadpool,
  };
}

function threadCount(): number {
  try {
    return fs.readdirSync('/proc/self/task').length;
  } catch {
    return -1;
  }
}

/**
 * Sets UV_THREADPOOL_SIZE (libuv reads it once, when the pool starts: the first async fs or
 * addon call), then starts the pool and counts the threads it added. Must run before any
 * thread-pool use, or the pool keeps the size it started with.
 */
export async function configureThreadpool(wanted: number): Promise<ThreadpoolInfo> {
  const envBefore = process.env.UV_THREADPOOL_SIZE ?? null;
  const current = envBefore === null ? NaN : Number(envBefore);
  const requested = Number.isInteger(current) && current >= wanted ? current : wanted;
  process.env.UV_THREADPOOL_SIZE = String(requested);
  const before = threadCount();
  await fs.promises.access('/');
  const added = threadCount() - before;
  if (before > 0 && added > 0) {
    return {
      envBefore,
      requested,
      started: added,
      note: `UV_THREADPOOL_SIZE=${requested} (set by the bench${envBefore ? `; was ${envBefore}` : ''}): the thread-pool engine and node:fs can keep ${Math.min(added, 32)}+ I/Os in flight`,
    };
  }
  // Already running: its size is what UV_THREADPOOL_SIZE said when it started (the CLI sets it first).
  const size = Number.isInteger(current) && current > 0 ? current : 4;
  return {
    envBefore,
    requested,
    started: null,
    note:
      size >= wanted
        ? `the libuv thread pool was started before the bench with UV_THREADPOOL_SIZE=${size}: enough for every depth here`
        : `the libuv thread pool was already running when the bench started (size ${size}${envBefore ? '' : ', UV_THREADPOOL_SIZE unset'}); ` +
          `thread-pool and node:fs depths above that size queue in libuv — set UV_THREADPOOL_SIZE=${wanted} before starting node`,
  };
}

export interface MountInfo {
  mountpoint: string;
  fsType: string;
  source: string;
  options: string;
}

/** The mount that holds `target` (longest mountpoint prefix, topmost). */
export function mountOf(target: string): MountInfo | null {
  let best: MountInfo | null = null;
  let text: string;
  try {
    text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return null;
  }
  const real = fs.realpathSync(target);
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-', 6);
    if (sep < 0 || f.length < sep + 4) continue;
    const mountpoint = f[4]!.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
    const inside = real === mountpoint || real.startsWith(mountpoint === '/' ? '/' : mountpoint + '/');
    if (!inside) continue;
    if (!best || mountpoint.length >= best.mountpoint.length) {
      const options = [...new Set(`${f[5]!},${f[sep + 3]!}`.split(','))].join(',');
      best = { mountpoint, fsType: f[sep + 1]!, source: f[sep + 2]!, options };
    }
  }
  return best;
}

/** Pages of `file` in the page cache, by `fincore` (util-linux); null if it cannot tell. */
export function cachedPages(file: string, fincore: string | null): number | null {
  if (!fincore) return null;
  const r = run(fincore, ['--bytes', '--noheadings', '--output', 'PAGES', file]);
  if (!r.ok) return null;
  const n = Number(r.stdout.trim());
  return Number.isInteger(n) ? n : null;
}

export function loopDirectIo(loop: string): boolean | null {
  try {
    return fs.readFileSync(`/sys/block/${path.basename(loop)}/loop/dio`, 'utf8').trim() === '1';
  } catch {
    return null;
  }
}

export function freeBytes(dir: string): number {
  const s = fs.statfsSync(dir);
  return s.bavail * s.bsize;
}
