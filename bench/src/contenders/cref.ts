// The C reference (bench/ref/atomic_ref.c): the same atomic-write job with
// liburing and nothing else, the ceiling for the atomic row (fio < 3.38 has
// no RWF_ATOMIC). Built by the bench into bench/bin/ (gitignored).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runCommand } from '../cleanup';
import { PACKAGE_ROOT, VENDORED_LIBURING_SOURCES } from '../environment';
import { Unsupported, type RunContext, type RunResult } from '../types';

export const CREF_SOURCE = path.join(PACKAGE_ROOT, 'bench', 'ref', 'atomic_ref.c');
export const CREF_BINARY = path.join(PACKAGE_ROOT, 'bench', 'bin', 'atomic_ref');

/** The pure-syscall reproducer of docs/xfs-atomic-overlap.md (pthreads, no liburing). */
export const OVERLAP_SOURCE = path.join(PACKAGE_ROOT, 'bench', 'ref', 'atomic_overlap.c');
export const OVERLAP_BINARY = path.join(PACKAGE_ROOT, 'bench', 'bin', 'atomic_overlap');

const built = new Map<string, Promise<string>>();

/** Builds `binary` from `source` once per process (again only if the source is newer). */
function buildC(what: string, source: string, binary: string, cc: string | null, libs: string[]): Promise<string> {
  let once = built.get(binary);
  if (!once) {
    once = (async () => {
      if (!fs.existsSync(source)) throw new Unsupported(`${what} source ${source} not found`);
      if (!cc) throw new Unsupported(`no C compiler (cc) to build the ${what}`);
      const fresh = fs.existsSync(binary) && fs.statSync(binary).mtimeMs >= fs.statSync(source).mtimeMs;
      if (fresh) return binary;
      fs.mkdirSync(path.dirname(binary), { recursive: true });
      const args = ['-O2', '-Wall', '-o', binary, source, ...libs];
      const r = await runCommand(cc, args, 120_000);
      if (r.code !== 0) {
        throw new Unsupported(`building the ${what} failed (${cc} ${args.join(' ')}): ${r.stderr.trim().split('\n').slice(0, 3).join(' | ')}`);
      }
      return binary;
    })();
    built.set(binary, once);
  }
  return once;
}

/** Builds bench/bin/atomic_ref once per process (again only if the source is newer). */
export function buildCRef(cc: string | null, liburing: string | null): Promise<string> {
  if (!liburing) return Promise.reject(new Unsupported('the vendored liburing (deps/liburing) is missing'));
  // liburing's own sources are compiled in, as odirect's binding.gyp does: no system liburing.
  return buildC('C reference', CREF_SOURCE, CREF_BINARY, cc, ['-D_GNU_SOURCE', '-I', path.join(liburing, 'include'), ...VENDORED_LIBURING_SOURCES]);
}

/** Builds bench/bin/atomic_overlap, the XFS overlapping-atomic-writes reproducer. */
export function buildAtomicOverlap(cc: string | null): Promise<string> {
  return buildC('atomic-overlap reproducer', OVERLAP_SOURCE, OVERLAP_BINARY, cc, ['-pthread']);
}

interface CRefOutput {
  error?: string;
  ops: number;
  bytes: number;
  seconds: number;
  iops: number;
  lat_ns: { p50: number; p99: number; max: number };
  /** getrusage(RUSAGE_SELF) over the timed loop, µs (absent from an old binary). */
  cpu_us?: { user: number; sys: number };
}

export async function runCRef(ctx: RunContext): Promise<RunResult> {
  const w = ctx.workload;
  if (w.kind !== 'random' && w.kind !== 'sequential') throw new Unsupported('the C reference runs the shared-file rows only');
  const binary = await buildCRef(ctx.tools.cc, ctx.tools.liburing);
  // The same build step leaves the XFS overlap reproducer ready in bench/bin/ (docs/xfs-atomic-overlap.md).
  await buildAtomicOverlap(ctx.tools.cc);
  const args = [
    '--file', ctx.target.sharedFile,
    '--size', String(ctx.target.fileSize),
    '--bs', String(w.bs),
    '--qd', String(w.depth),
    '--runtime', String(ctx.seconds),
    '--atomic', w.atomic ? '1' : '0',
    '--dsync', w.dsync ? '1' : '0',
    ...(w.op === 'read' ? ['--read'] : []),
  ];
  const r = await runCommand(binary, args, (ctx.seconds + 60) * 1000);
  let out: CRefOutput | undefined;
  try {
    out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as CRefOutput;
  } catch {
    out = undefined;
  }
  if (r.code !== 0 || !out || out.error) {
    throw new Error(`C reference failed (${r.timedOut ? 'timed out' : `exit ${r.code}`}): ${out?.error ?? r.stderr.trim()}`);
  }
  return {
    ops: out.ops,
    bytes: out.bytes,
    seconds: out.seconds,
    p50Ns: out.lat_ns.p50 || null,
    p99Ns: out.lat_ns.p99 || null,
    cpu: out.cpu_us ? { userUs: out.cpu_us.user, systemUs: out.cpu_us.sys, source: 'getrusage(RUSAGE_SELF)' } : null,
    details: { command: [path.relative(PACKAGE_ROOT, binary), ...args].join(' '), maxLatencyNs: out.lat_ns.max },
  };
}
