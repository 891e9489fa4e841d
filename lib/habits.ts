// node:fs habits of DirectFile that are not about routing a write: AbortSignal,
// stat() from statx, the argument-count check, the close-on-collection safety
// net. Kept apart from file.ts so that file stays the thin guard.
import { OdirectError } from './errors';
import { native, type NativeStatx } from './native';
import { ArgumentError } from './validate';

// ---- AbortSignal -------------------------------------------------------------

/** An operation given an aborted `signal`: name 'AbortError', code 'ABORT_ERR', as node's. `cause` is the signal's reason. */
export class AbortError extends OdirectError {
  constructor(what: string, reason?: unknown) {
    super('ABORT_ERR', `The operation was aborted: ${what}`, reason === undefined ? {} : { cause: reason });
  }
}

export { checkSignal } from './streams/options';

/**
 * Runs `run`, which hands `signal` to the engine calls it makes (the requests
 * carry it: no AsyncLocalStorage, whose promise hooks would slow every promise
 * in the process once made). Without a signal it is `run()` itself, with no
 * promise of its own. Aborted before: rejects with no I/O. Aborted while it
 * runs: the engines drop what they have not issued and cancel what they can;
 * once everything `run` started has settled, the call rejects with AbortError,
 * even if the I/O completed (docs/api-habits.md). `what` names the call in
 * that error (made only then).
 */
export function abortable<T>(what: () => string, signal: AbortSignal | undefined, run: () => Promise<T>): Promise<T> {
  if (!signal) return run();
  return abortableRun(what, signal, run);
}

async function abortableRun<T>(describe: () => string, signal: AbortSignal, run: () => Promise<T>): Promise<T> {
  if (signal.aborted) throw new AbortError(describe(), signal.reason);
  const what = describe();
  let result: T;
  try {
    result = await run();
  } catch (err) {
    if (!signal.aborted) throw err;
    // What the kernel said (ECANCELED: cancelled before it ran) is in the message; the cause is the reason, as node's.
    const said = (err as { code?: unknown }).code;
    throw new AbortError(`${what} (it ended with ${typeof said === 'string' ? said : String(err)})`, signal.reason);
  }
  if (signal.aborted) throw new AbortError(`${what} (it had completed: its I/O happened)`, signal.reason);
  return result;
}

/** signal.throwIfAborted(), but an OdirectError (AbortError) as everything odirect throws. */
export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new AbortError(what, signal.reason);
}

// ---- argument count ------------------------------------------------------------

/**
 * Refuses node:fs's positional form (`read(buffer, offset, length, position)`):
 * odirect takes the whole view, one position and an options object. Without this,
 * `read(buf, 0, 4096, 4096)` read at position 0.
 */
export function checkSignature(args: IArguments, signature: string, optionsAt: number): void {
  const extra = args.length > optionsAt + 1;
  const positional = args.length > optionsAt && typeof args[optionsAt] === 'number';
  if (!extra && !positional) return;
  throw new ArgumentError(
    'ERR_INVALID_ARG_TYPE',
    `${signature} takes ${optionsAt + 1} arguments at most, the last an options object; got ${args.length}` +
      ` (${Array.from(args, (a) => (typeof a === 'object' && a !== null ? a.constructor?.name ?? 'object' : typeof a)).join(', ')}).` +
      ` node:fs's (buffer, offset, length, position) form is not supported: pass buffer.subarray(offset, offset + length).`,
  );
}

// ---- stat() ----------------------------------------------------------------------

const STATX_BTIME = 0x800;
const S_IFMT = 0o170000;

/**
 * What `stat()` gives: statx of the open fd, shaped like node's `fs.Stats` for the
 * fields both have. Times are `Date`s (millisecond precision) and `…Ns` BigInts
 * (nanoseconds since the epoch, as `fs.BigIntStats`); `birthtime` is undefined
 * where the filesystem does not report it (statx mask without STATX_BTIME).
 */
export interface DirectFileStat {
  size: number;
  /** 512-byte blocks allocated (st_blocks). */
  blocks: number;
  /** Preferred I/O size (st_blksize). */
  blksize: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  ino: number;
  /** makedev(devMajor, devMinor) as node computes dev. */
  dev: number;
  rdev: number;
  atime: Date;
  mtime: Date;
  ctime: Date;
  birthtime: Date | undefined;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  birthtimeNs: bigint | undefined;
  isFile(): boolean;
  isBlockDevice(): boolean;
}

function makedev(major: number, minor: number): number {
  // glibc's gnu_dev_makedev, in doubles (a device number can pass 2^32).
  return (minor & 0xff) + (major & 0xfff) * 256 + Math.floor(minor / 256) * 0x100000 + Math.floor(major / 4096) * 0x100000000;
}

const nsToDate = (ns: bigint): Date => new Date(Number(ns / 1_000_000n));

export function toStat(st: NativeStatx): DirectFileStat {
  const birth = (st.mask & STATX_BTIME) !== 0 ? st.btimeNs : undefined;
  return {
    size: st.size,
    blocks: st.blocks,
    blksize: st.blksize,
    mode: st.mode,
    nlink: st.nlink,
    uid: st.uid,
    gid: st.gid,
    ino: st.ino,
    dev: makedev(st.devMajor, st.devMinor),
    rdev: makedev(st.rdevMajor, st.rdevMinor),
    atime: nsToDate(st.atimeNs),
    mtime: nsToDate(st.mtimeNs),
    ctime: nsToDate(st.ctimeNs),
    birthtime: birth === undefined ? undefined : nsToDate(birth),
    atimeNs: st.atimeNs,
    mtimeNs: st.mtimeNs,
    ctimeNs: st.ctimeNs,
    birthtimeNs: birth,
    isFile: () => (st.mode & S_IFMT) === 0o100000,
    isBlockDevice: () => (st.mode & S_IFMT) === 0o060000,
  };
}

// ---- a handle collected while open ------------------------------------------------

/**
 * As node's FileHandle: a DirectFile collected without close() gets its fd closed,
 * with a process warning. Holds the fd number and path only, never the handle; an
 * op in flight keeps its handle reachable (its promise chain refers to it), so this
 * never runs under I/O. close() takes the handle out of this registry first, so a reused fd number is never closed.
 */
interface Unclosed {
  fds: number[];
  path: string;
  /** Lets go of the handle's share of the per-file range lock (mechanisms/range-lock.ts). */
  release: () => void;
}

const unclosed = new FinalizationRegistry<Unclosed>(({ fds, path, release }) => {
  release();
  for (const fd of fds) {
    try {
      native.closeSync(fd);
    } catch {
      continue; // already closed behind our back: nothing to warn about
    }
    process.emitWarning(`Closing file descriptor ${fd} on garbage collection: a DirectFile for ${path} was never closed`, {
      type: 'Warning',
      code: 'ODIRECT_UNCLOSED_FILE',
    });
  }
});
const tracked = new WeakMap<object, Unclosed>();

/** `owner` (the handle's FileContext, which lives exactly as long as the handle) closes `fd` if collected unclosed. */
export function closeOnCollection(owner: object, fd: number, path: string, release: () => void): void {
  const held: Unclosed = { fds: [fd], path, release };
  tracked.set(owner, held);
  unclosed.register(owner, held, owner);
}

/** One more fd of the same owner (the second, buffered fd a direct file opens on first use). */
export function alsoCloseOnCollection(owner: object, fd: number): void {
  tracked.get(owner)?.fds.push(fd);
}

export function closedExplicitly(owner: object): void {
  unclosed.unregister(owner);
  tracked.delete(owner);
}
