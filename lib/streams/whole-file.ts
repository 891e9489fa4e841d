// readFile / writeFile: whole-file conveniences on the same machinery as the
// streams: direct, aligned, several I/Os in flight, exact size, no page cache.
import { alignedBuffer } from '../aligned';
import { open, type DirectFile } from '../file';
import type { EngineName } from '../types';
import { checkBoolean, checkOptions, checkPath, typeError } from '../validate';
import { BlockWriter } from './block-writer';
import { UncachedReader } from './uncached-reader';
import { alignUp, checkChunkSize, checkEngine, checkInFlight, checkMode, checkSignal, DEFAULT_IN_FLIGHT } from './options';
import { throwIfAborted } from '../habits';

const READ_CHUNK = 4 * 1024 * 1024;

export interface ReadFileOptions {
  /** Reads in flight at once. Default 4. */
  readAhead?: number;
  /** Default 'threadpool' (faster than io_uring for large sequential I/O here; see streams/options.ts). */
  engine?: 'auto' | EngineName;
  signal?: AbortSignal;
}

/**
 * The whole file as one Buffer, read direct with `readAhead` reads of 4 MiB in
 * flight, into one aligned buffer (no copy). Reads the size the file had when
 * opened; a file cut shorter meanwhile gives what is there.
 */
export async function readFile(path: string, options?: ReadFileOptions): Promise<Buffer> {
  const p = checkPath(path);
  const o = checkOptions<ReadFileOptions>(options, 'options');
  const readAhead = checkInFlight(o.readAhead, 'options.readAhead');
  const engine = checkEngine(o.engine, 'options.engine');
  const signal = checkSignal(o.signal, 'options.signal');
  throwIfAborted(signal, 'readFile');
  const file = await open(p, { readOnly: true, engine });
  let uncached: UncachedReader | undefined;
  try {
    if (!file.direct) uncached = await UncachedReader.open(p);
    return await readWhole(file, uncached, readAhead, signal);
  } finally {
    await uncached?.close();
    await file.close();
  }
}

async function readWhole(file: DirectFile, uncached: UncachedReader | undefined, readAhead: number, signal: AbortSignal | undefined): Promise<Buffer> {
  const size = file.size;
  if (size === 0) return Buffer.alloc(0);
  const align = Math.max(4096, file.direct ? file.capabilities.direct.readOffsetAlign : 0);
  const into = alignedBuffer(alignUp(size, align), align);
  let next = 0;
  /** Where the file turned out to end, if before `size`. */
  let shortAt = size;
  const worker = async (): Promise<void> => {
    while (next < into.byteLength) {
      throwIfAborted(signal, 'readFile');
      const position = next;
      const length = Math.min(READ_CHUNK, into.byteLength - position);
      next += length;
      const view = into.subarray(position, position + length);
      const n = uncached ? await uncached.read(view, position) : await file.read(view, position);
      if (n < length) shortAt = Math.min(shortAt, position + n);
    }
  };
  // Each worker awaits its own read before taking the next range: `readAhead` in flight.
  const workers = Array.from({ length: Math.min(readAhead, Math.ceil(into.byteLength / READ_CHUNK)) }, worker);
  const results = await Promise.allSettled(workers);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return into.subarray(0, Math.min(size, shortAt));
}

export interface WriteFileOptions {
  /** 'w' (create or truncate, default), 'wx' (create, fail if it exists). */
  flags?: 'w' | 'wx';
  /** Mode of a created file (before umask). Default 0o666. */
  mode?: number;
  /** Durable when the promise resolves: RWF_DSYNC writes and an fdatasync for the size. */
  dsync?: boolean;
  /** Bytes per direct write. Default 1 MiB. */
  chunkSize?: number;
  /** Direct writes in flight at once. Default 4. */
  writeBehind?: number;
  /** Default 'threadpool' (faster than io_uring for large sequential I/O here; see streams/options.ts). */
  engine?: 'auto' | EngineName;
  signal?: AbortSignal;
}

export interface ResolvedWriteFile {
  flags: 'w' | 'wx';
  mode: number;
  dsync: boolean;
  chunk: number;
  writeBehind: number;
  engine: 'auto' | EngineName;
  signal: AbortSignal | undefined;
}

export function resolveWriteFileOptions(options: unknown): ResolvedWriteFile {
  const o = checkOptions<WriteFileOptions>(options, 'options');
  const flags = o.flags === undefined ? 'w' : o.flags;
  if (flags !== 'w' && flags !== 'wx') throw typeError('options.flags', "'w' or 'wx'", flags);
  return {
    flags,
    mode: checkMode(o.mode, 'options.mode') ?? 0o666,
    dsync: checkBoolean(o.dsync, 'options.dsync') ?? false,
    chunk: checkChunkSize(o.chunkSize, 'options.chunkSize'),
    writeBehind: o.writeBehind === undefined ? DEFAULT_IN_FLIGHT : checkInFlight(o.writeBehind, 'options.writeBehind'),
    engine: checkEngine(o.engine, 'options.engine'),
    signal: checkSignal(o.signal, 'options.signal'),
  };
}

export function checkData(data: unknown): Uint8Array {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (data instanceof Uint8Array) return data;
  throw typeError('data', 'a string, Buffer or Uint8Array', data);
}

/**
 * Writes `data` into an open, empty file: allocated at its final size, written
 * in aligned blocks, the last one padded and the size then cut to exact.
 */
export async function writeInto(file: DirectFile, data: Uint8Array, o: ResolvedWriteFile, flush: boolean): Promise<void> {
  const writer = new BlockWriter(file, {
    start: 0,
    chunk: o.chunk,
    writeBehind: o.writeBehind,
    size: data.byteLength,
    // Preallocating lets several writes run at once; data that fits in one
    // write gains nothing from it and pays a fallocate and the conversion of
    // the unwritten extent (about 3 ms of a 4 KiB replace on ext4, measured).
    preallocate: data.byteLength > o.chunk,
    dsync: o.dsync,
    flush,
  });
  try {
    await writer.begin();
    for (let at = 0; at < data.byteLength; at += o.chunk) {
      throwIfAborted(o.signal, `write ${file.path}`);
      await writer.write(data.subarray(at, at + o.chunk));
    }
    await writer.finish();
  } finally {
    await writer.settle();
  }
}

/** Writes `data` as the whole file, direct; with `dsync`, durable when it resolves. */
export async function writeFile(path: string, data: Uint8Array | string, options?: WriteFileOptions): Promise<void> {
  const p = checkPath(path);
  const bytes = checkData(data);
  const o = resolveWriteFileOptions(options);
  throwIfAborted(o.signal, 'writeFile');
  const file = await open(p, {
    create: true,
    truncate: o.flags === 'w',
    exclusive: o.flags === 'wx',
    mode: o.mode,
    engine: o.engine,
  });
  try {
    await writeInto(file, bytes, o, o.dsync);
  } finally {
    await file.close();
  }
}
