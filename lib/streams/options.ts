// Options of the streams and whole-file helpers: checked before any I/O, with
// the names and meanings of node:fs where they mean the same thing.
import * as nodePath from 'node:path';
import { OdirectError } from '../errors';
import { DirectFile } from '../file';
import type { EngineName } from '../types';
import { ArgumentError, checkBoolean, checkEnum, checkOptions, checkPath, checkPosition, rangeError, typeError } from '../validate';

const MiB = 1024 * 1024;
/** Bytes per direct read or write: large enough that per-I/O overhead is small next to the transfer. */
export const DEFAULT_CHUNK = MiB;
/** Reads or writes in flight at once. */
export const DEFAULT_IN_FLIGHT = 4;
/** The largest chunk: one I/O of 64 MiB is far past the point where bigger stops helping. */
const MAX_CHUNK = 64 * MiB;
const MAX_IN_FLIGHT = 64;

export function checkChunkSize(value: unknown, name: string): number {
  if (value === undefined) return DEFAULT_CHUNK;
  const n = checkPosition(value, name);
  if (n < 1 || n > MAX_CHUNK) throw rangeError(name, `from 1 to ${MAX_CHUNK}`, n);
  return n;
}

export function checkInFlight(value: unknown, name: string): number {
  if (value === undefined) return DEFAULT_IN_FLIGHT;
  if (typeof value !== 'number') throw typeError(name, 'a number', value);
  if (!Number.isInteger(value) || value < 1 || value > MAX_IN_FLIGHT) throw rangeError(name, `an integer from 1 to ${MAX_IN_FLIGHT}`, value);
  return value;
}

export function checkMode(value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number') throw typeError(name, 'a number', value);
  if (!Number.isInteger(value) || value < 0 || value > 0o7777) throw rangeError(name, 'an integer from 0 to 0o7777', value);
  return value;
}

export function checkSignal(value: unknown, name: string): AbortSignal | undefined {
  if (value === undefined) return undefined;
  if (!(value instanceof AbortSignal)) throw typeError(name, 'an AbortSignal', value);
  return value;
}

/**
 * The engine of the streams and whole-file helpers: the thread pool unless
 * asked. Their I/O is a few large (1-4 MiB) reads or writes in flight, and
 * there the thread pool measured faster than io_uring on ext4 and XFS loop
 * devices (6.18, 2 cores): reads 780-890 vs 520-640 MiB/s, a 1 GiB
 * pipeline copy 458 vs 182 MiB/s (ext4) and 412 vs 220 (XFS). io_uring's gain
 * is per-I/O overhead at high depth, which large sequential I/O does not have.
 * ODIRECT_ENGINE still overrides it, as for open().
 */
export function checkEngine(value: unknown, name: string): 'auto' | EngineName {
  return checkEnum(value, name, ['auto', 'uring', 'threadpool'] as const) ?? 'threadpool';
}

/**
 * options.fd of a stream: a DirectFile from odirect's open(), open (and
 * writable for a write stream). A raw fd number is refused: odirect's I/O
 * depends on what DirectFile knows of its fd (opened O_DIRECT or not, the
 * device's alignment, the size it tracks to order extending writes, the range
 * locks shared with other handles of the file), and a number from node:fs
 * carries none of it.
 */
export function checkStreamFd(value: unknown, name: string, access: 'read' | 'write'): DirectFile | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'number') {
    throw new ArgumentError(
      'ERR_INVALID_ARG_TYPE',
      `${name} must be a DirectFile from odirect's open(), got the number ${value}: a raw fd carries no O_DIRECT, alignment or size tracking`,
    );
  }
  if (!(value instanceof DirectFile)) throw typeError(name, "a DirectFile from odirect's open()", value);
  if (value.closed) throw new OdirectError('EBADF', `EBADF: ${name} (${value.path}) is closed`, { errno: EBADF, path: value.path });
  if (access === 'write' && value.readOnly) {
    throw new OdirectError('EBADF', `EBADF: ${name} (${value.path}) was opened read-only`, { errno: EBADF, path: value.path });
  }
  return value;
}

const EBADF = 9;

/**
 * The path of a stream: with options.fd it may be left out (null or
 * undefined, as node:fs takes it) or name the same file; the stream's path is
 * then the DirectFile's.
 */
export function streamPath(value: unknown, fd: DirectFile | undefined): string {
  if (!fd) return checkPath(value);
  if (value === undefined || value === null) return fd.path;
  const p = checkPath(value);
  if (nodePath.resolve(p) !== nodePath.resolve(fd.path)) {
    throw new ArgumentError('ERR_INVALID_ARG_VALUE', `path (${p}) and options.fd (${fd.path}) name different files: give one or the other`);
  }
  return fd.path;
}

/** Options that only mean something when the stream opens the file itself. */
function refuseWithFd(o: Record<string, unknown>, names: string[]): void {
  for (const name of names) {
    if (o[name] !== undefined) {
      throw new ArgumentError('ERR_INVALID_ARG_VALUE', `options.${name} cannot be given with options.fd: it applies when the stream opens the file`);
    }
  }
}

export interface ResolvedRead {
  /** An open file to read instead of opening the path. */
  fd: DirectFile | undefined;
  /** Close the file when the stream ends or is destroyed (node:fs's autoClose). */
  autoClose: boolean;
  start: number;
  /** Exclusive: one past the last byte to read (node:fs's `end` is inclusive). */
  endExclusive: number;
  chunk: number;
  readAhead: number;
  engine: 'auto' | EngineName;
  signal: AbortSignal | undefined;
}

export function resolveReadOptions(options: unknown): ResolvedRead {
  const o = checkOptions<Record<string, unknown>>(options, 'options');
  const flags = o.flags === undefined ? 'r' : o.flags;
  if (flags !== 'r') throw new ArgumentError('ERR_INVALID_ARG_VALUE', `options.flags must be 'r' for a read stream, got ${String(flags)}`);
  if (o.encoding !== undefined && o.encoding !== null) {
    throw new ArgumentError('ERR_INVALID_ARG_VALUE', 'options.encoding is not supported: the stream gives Buffers (use setEncoding())');
  }
  const fd = checkStreamFd(o.fd, 'options.fd', 'read');
  if (fd) refuseWithFd(o, ['engine']);
  const start = o.start === undefined ? 0 : checkPosition(o.start, 'options.start');
  let endExclusive = Number.MAX_SAFE_INTEGER;
  if (o.end !== undefined && o.end !== Infinity) {
    const end = checkPosition(o.end, 'options.end');
    if (end < start) throw rangeError('options.end', `>= options.start (${start})`, end);
    endExclusive = end + 1;
  }
  return {
    fd,
    autoClose: checkBoolean(o.autoClose, 'options.autoClose') ?? true,
    start,
    endExclusive,
    chunk: checkChunkSize(o.highWaterMark, 'options.highWaterMark'),
    readAhead: checkInFlight(o.readAhead, 'options.readAhead'),
    engine: checkEngine(o.engine, 'options.engine'),
    signal: checkSignal(o.signal, 'options.signal'),
  };
}

export type WriteFlags = 'w' | 'wx' | 'r+' | 'a' | 'a+';

export interface ResolvedWriteStream {
  flags: WriteFlags;
  /** An open file to write instead of opening the path. */
  fd: DirectFile | undefined;
  /** Close the file when the stream finishes or is destroyed (node:fs's autoClose). */
  autoClose: boolean;
  /** Flags 'a'/'a+': the first byte goes at the file's size when the stream opens. */
  append: boolean;
  mode: number;
  /** Where the first byte goes, when not appending. */
  start: number;
  chunk: number;
  writeBehind: number;
  /** The final size if known: preallocated at once. */
  size: number | undefined;
  preallocate: boolean;
  dsync: boolean;
  flush: boolean;
  engine: 'auto' | EngineName;
  signal: AbortSignal | undefined;
}

export function resolveWriteStreamOptions(options: unknown): ResolvedWriteStream {
  const o = checkOptions<Record<string, unknown>>(options, 'options');
  const flags = checkEnum(o.flags, 'options.flags', ['w', 'wx', 'r+', 'a', 'a+'] as const) ?? (o.fd === undefined ? 'w' : 'r+');
  const fd = checkStreamFd(o.fd, 'options.fd', 'write');
  if (fd) {
    refuseWithFd(o, ['mode', 'engine']);
    if (flags === 'w' || flags === 'wx') {
      throw new ArgumentError(
        'ERR_INVALID_ARG_VALUE',
        `options.flags '${flags}' creates or truncates the file when the stream opens it; with options.fd use 'r+' (the default) or 'a'`,
      );
    }
  }
  const append = flags === 'a' || flags === 'a+';
  if (append && o.start !== undefined) {
    throw new ArgumentError('ERR_INVALID_ARG_VALUE', `options.start cannot be given with flags '${flags}': appending starts at the end of the file`);
  }
  const size = o.size === undefined ? undefined : checkPosition(o.size, 'options.size');
  return {
    flags,
    fd,
    autoClose: checkBoolean(o.autoClose, 'options.autoClose') ?? true,
    append,
    mode: checkMode(o.mode, 'options.mode') ?? 0o666,
    start: o.start === undefined ? 0 : checkPosition(o.start, 'options.start'),
    chunk: checkChunkSize(o.highWaterMark, 'options.highWaterMark'),
    writeBehind: checkInFlight(o.writeBehind, 'options.writeBehind'),
    size,
    preallocate: checkBoolean(o.preallocate, 'options.preallocate') ?? true,
    dsync: checkBoolean(o.dsync, 'options.dsync') ?? false,
    flush: checkBoolean(o.flush, 'options.flush') ?? false,
    engine: checkEngine(o.engine, 'options.engine'),
    signal: checkSignal(o.signal, 'options.signal'),
  };
}

/** Rounds `n` up to a multiple of `align`. */
export function alignUp(n: number, align: number): number {
  return Math.ceil(n / align) * align;
}

export function alignDown(n: number, align: number): number {
  return n - (n % align);
}
