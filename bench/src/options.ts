// Command-line options of `odirect bench`.
import * as path from 'node:path';

export type FsName = 'ext4' | 'xfs';
export const ALL_FS: readonly FsName[] = ['ext4', 'xfs'];

export interface BenchOptions {
  quick: boolean;
  /** Runs per contender and row; the table shows the median and the spread. */
  runs: number;
  /** Seconds per run and contender (time-bounded rows). */
  seconds: number;
  /** Size of the file laid out for the random/sequential rows, MiB. */
  fileMiB: number;
  /** Bytes written by the buffered (dontcache vs default) rows, MiB. */
  bufferedMiB: number;
  /** Upper bound of the append rows' log file, MiB (the row ends at this size or at the time limit). */
  appendCapMiB: number;
  /** Row filters: substrings, or regular expressions, matched against 'workload@fs'. */
  filters: RegExp[];
  filterText: string[];
  /** Filesystems to make (scratch mode). */
  fs: FsName[];
  /** Contenders to run (ids); undefined: all. */
  contenders?: string[];
  /** Run on this directory instead of making scratch filesystems. */
  dir?: string;
  /** Where <date>.json and <date>.svg go. */
  outDir: string;
  progress: boolean;
  /** Run scripts/install-deps.sh when tools are missing: only when asked (--install). */
  install: boolean;
  help: boolean;
  list: boolean;
}

export class UsageError extends Error {}

export const HELP = `usage: odirect bench [options]

Runs odirect's benchmark suite: each workload on scratch ext4 and XFS filesystems
(sparse images on loop devices with --direct-io=on, made and removed by the bench;
needs root), against fio, node:fs and (for atomic writes) a C liburing reference.

  --quick            every row about 2 s, 1 run, smaller files: the suite in a few minutes
  --runs N           runs per contender and row (default 3; 1 with --quick); medians + spread
  --seconds S        seconds per run and contender (default 5; 2 with --quick)
  --filter F         only rows whose id ('randwrite-qd32@xfs') matches F: a substring, or a
                     regular expression (/re/ or anything with regex characters); repeatable,
                     comma-separated
  --fs LIST          filesystems to make: ext4,xfs (default both)
  --contenders LIST  odirect-uring,odirect-threadpool,fio,c-ref,node-fs,cp (default all)
  --dir PATH         run on the filesystem of PATH (a temp subdirectory is made there and
                     removed); nothing is made or mounted
  --file-mib N       size of the laid-out file (default 1024; 256 with --quick)
  --buffered-mib N   bytes written by the dontcache/default buffered rows (default 512; 128 with --quick)
  --append-mib N     size cap of the append rows' log file (default 256; 128 with --quick)
  --out DIR          where <date>.json and <date>.svg go (default bench/results)
  --no-progress      no progress bar on stderr
  --install          run scripts/install-deps.sh (apt-get, as root) when fio or cc
                     or the scratch tools are missing; without it nothing is installed
  --no-install       the default: install nothing (kept for old command lines)
  --list             print the row ids and exit
  -h, --help         this text
`;

function positiveInt(flag: string, value: string | undefined, max: number): number {
  const n = Number(value);
  if (value === undefined || !Number.isInteger(n) || n < 1 || n > max) {
    throw new UsageError(`${flag} needs an integer from 1 to ${max}, got ${JSON.stringify(value)}`);
  }
  return n;
}

function positiveNumber(flag: string, value: string | undefined, max: number): number {
  const n = Number(value);
  if (value === undefined || !Number.isFinite(n) || n <= 0 || n > max) {
    throw new UsageError(`${flag} needs a number above 0 and at most ${max}, got ${JSON.stringify(value)}`);
  }
  return n;
}

const REGEX_CHARS = /[\\^$*+?()[\]{}|]/;

/** 'randwrite-qd32' is a substring; '/qd(1|32)$/i' or 'qd(1|32)' a regular expression. */
export function compileFilter(text: string): RegExp {
  const slashed = /^\/(.*)\/([a-z]*)$/.exec(text);
  try {
    if (slashed) return new RegExp(slashed[1]!, slashed[2]);
    if (REGEX_CHARS.test(text)) return new RegExp(text);
  } catch (e) {
    throw new UsageError(`--filter ${JSON.stringify(text)} is not a valid regular expression: ${(e as Error).message}`);
  }
  return new RegExp(text.replace(/[.]/g, '\\.'));
}

export function defaultOutDir(packageRoot: string): string {
  return path.join(packageRoot, 'bench', 'results');
}

export function parseOptions(argv: readonly string[], packageRoot: string): BenchOptions {
  const o: Partial<BenchOptions> & { filters: RegExp[]; filterText: string[] } = { filters: [], filterText: [] };
  let runs: number | undefined;
  let seconds: number | undefined;
  let fileMiB: number | undefined;
  let bufferedMiB: number | undefined;
  let appendCapMiB: number | undefined;
  const args = [...argv];
  while (args.length) {
    const raw = args.shift()!;
    const eq = raw.startsWith('--') ? raw.indexOf('=') : -1;
    const flag = eq > 0 ? raw.slice(0, eq) : raw;
    const inline = eq > 0 ? raw.slice(eq + 1) : undefined;
    const value = (): string => {
      const v = inline ?? args.shift();
      if (v === undefined) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--quick':
        o.quick = true;
        break;
      case '--runs':
        runs = positiveInt(flag, value(), 100);
        break;
      case '--seconds':
        seconds = positiveNumber(flag, value(), 600);
        break;
      case '--file-mib':
        fileMiB = positiveInt(flag, value(), 1 << 20);
        break;
      case '--buffered-mib':
        bufferedMiB = positiveInt(flag, value(), 1 << 20);
        break;
      case '--append-mib':
        appendCapMiB = positiveInt(flag, value(), 1 << 20);
        break;
      case '--filter':
        for (const part of value().split(',').map((s) => s.trim()).filter(Boolean)) {
          o.filters.push(compileFilter(part));
          o.filterText.push(part);
        }
        break;
      case '--fs': {
        const list = value().split(',').map((s) => s.trim()).filter(Boolean);
        for (const name of list) {
          if (name !== 'ext4' && name !== 'xfs') throw new UsageError(`--fs takes ext4 and/or xfs, got ${JSON.stringify(name)}`);
        }
        if (!list.length) throw new UsageError('--fs needs ext4, xfs or ext4,xfs');
        o.fs = [...new Set(list as FsName[])];
        break;
      }
      case '--contenders':
        o.contenders = value().split(',').map((s) => s.trim()).filter(Boolean);
        break;
      case '--dir':
        o.dir = path.resolve(value());
        break;
      case '--out':
        o.outDir = path.resolve(value());
        break;
      case '--no-progress':
        o.progress = false;
        break;
      case '--install':
        o.install = true;
        break;
      case '--no-install':
        o.install = false;
        break;
      case '--list':
        o.list = true;
        break;
      case '-h':
      case '--help':
        o.help = true;
        break;
      default:
        throw new UsageError(`unknown option ${JSON.stringify(raw)} (see --help)`);
    }
    if (inline !== undefined && !['--runs', '--seconds', '--file-mib', '--buffered-mib', '--append-mib', '--filter', '--fs', '--contenders', '--dir', '--out'].includes(flag)) {
      throw new UsageError(`${flag} takes no value`);
    }
  }
  const quick = o.quick ?? false;
  return {
    quick,
    runs: runs ?? (quick ? 1 : 3),
    seconds: seconds ?? (quick ? 2 : 5),
    fileMiB: fileMiB ?? (quick ? 256 : 1024),
    bufferedMiB: bufferedMiB ?? (quick ? 128 : 512),
    appendCapMiB: appendCapMiB ?? (quick ? 128 : 256),
    filters: o.filters,
    filterText: o.filterText,
    fs: o.fs ?? [...ALL_FS],
    contenders: o.contenders,
    dir: o.dir,
    outDir: o.outDir ?? defaultOutDir(packageRoot),
    progress: o.progress ?? true,
    install: o.install ?? false,
    help: o.help ?? false,
    list: o.list ?? false,
  };
}
