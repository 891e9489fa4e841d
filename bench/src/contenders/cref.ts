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

let built: Promise<string> | undefined;

/** Builds bench/bin/atomic_ref once per process (again only if the source is newer). */
export function buildCRef(cc: string | null, liburing: string | null): Promise<string> {
  built ??= (async () => {
    if (!fs.existsSync(CREF_SOURCE)) throw new Unsupported(`C reference source ${CREF_SOURCE} not found`);
    if (!cc) throw new Unsupported('no C compiler (cc) to build the C reference');
    if (!liburing) throw new Unsupported('the vendored liburing (deps/liburing) is missing');
    const fresh = fs.existsSync(CREF_BINARY) && fs.statSync(CREF_BINARY).mtimeMs >= fs.statSync(CREF_SOURCE).mtimeMs;
    if (fresh) return CREF_BINARY;
    fs.mkdirSync(path.dirname(CREF_BINARY), { recursive: true });
    // liburing's own sources are compiled in, as odirect's binding.gyp does: no system liburing.
    const args = ['-O2', '-Wall', '-D_GNU_SOURCE', '-I', path.join(liburing, 'include'), '-o', CREF_BINARY, CREF_SOURCE, ...VENDORED_LIBURING_SOURCES];
    const r = await runCommand(cc, args, 120_000);
    if (r.code !== 0) {
      throw new Unsupported(`building the C reference failed (${cc} ${args.join(' ')}): ${r.stderr.trim().split('\n').slice(0, 3).join(' | ')}`);
    }
    return CREF_BINARY;
  })();
  return built;
}

interface CRefOutput {
  error?: string;
  ops: number;
  bytes: number;
  seconds: number;
  iops: number;
  lat_ns: { p50: number; p99: number; max: number };
}

export async function runCRef(ctx: RunContext): Promise<RunResult> {
  const w = ctx.workload;
  if (w.kind !== 'random' && w.kind !== 'sequential') throw new Unsupported('the C reference runs the shared-file rows only');
  const binary = await buildCRef(ctx.tools.cc, ctx.tools.liburing);
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
    details: { command: [path.relative(PACKAGE_ROOT, binary), ...args].join(' '), maxLatencyNs: out.lat_ns.max },
  };
}
