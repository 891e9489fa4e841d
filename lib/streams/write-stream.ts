// createWriteStream: a node:stream Writable that writes direct, in aligned
// blocks, several in flight (see block-writer.ts for how).
//
// Differences from node:fs's WriteStream, on purpose:
// - A write's callback means its bytes are staged or in flight, not yet on
//   disk: that is what lets several writes be in flight. 'finish' (and so
//   pipeline's callback) comes only once every write has completed, the file
//   has its exact size, and, with `dsync` or `flush`, all of it is durable.
//   If any write fails the stream errors and 'finish' never comes.
// - flags are 'w' (default), 'wx', 'r+', 'a' or 'a+'. Appending is not
//   O_APPEND (which would make every positioned write go to the end): the
//   stream starts at the file's size when it opens and writes on from there,
//   so it is an append for one writer, not for several racing ones. The first
//   write, from an unaligned end to the next block boundary, goes to
//   DirectFile.write, which reads and rewrites the block it shares with the
//   data already there (the same route as an 'r+' stream with an unaligned
//   start); every later write is aligned.
// - options.fd takes a DirectFile that is already open (not a raw number:
//   see checkStreamFd); autoClose (default true) says whether the stream
//   closes it, as node:fs.
// - highWaterMark (default 1 MiB) is also the size of each direct write.
// - The file is grown ahead of the writes (fallocate), so while the stream is
//   open it can be longer than the bytes written so far, with zeros past them;
//   'finish' cuts it to the exact size. A process that dies mid-stream can leave it
//   longer. `preallocate: false` turns this off (writes then extend the file
//   one at a time).
// Where the filesystem has no direct I/O (tmpfs, ext4 data=journal) writes go
// through the page cache with RWF_DONTCACHE (or write back and drop where the
// kernel lacks it): `direct` is false and a 'fallback' event says why.
import { Writable } from 'node:stream';
import { open, type DirectFile } from '../file';
import { BlockWriter } from './block-writer';
import { resolveWriteStreamOptions, streamPath, type ResolvedWriteStream, type WriteFlags } from './options';
import type { EngineName } from '../types';

export interface WriteStreamOptions {
  /**
   * 'w' (create or truncate, default), 'wx' (create, fail if it exists), 'r+' (existing file, not
   * truncated), 'a'/'a+' (create if missing, write from its end). With `fd`: 'r+' (default) or 'a'/'a+'.
   */
  flags?: WriteFlags;
  /** An open DirectFile to write instead of opening `path` (a raw fd number is refused). */
  fd?: DirectFile;
  /** Close the file on 'finish', error or destroy. Default true; false leaves it open, also a `fd` given. */
  autoClose?: boolean;
  /** Mode of a created file (before umask). Default 0o666, as node:fs. Not with `fd`. */
  mode?: number;
  /** Byte offset of the first byte written. Default 0. Not with 'a'/'a+'. */
  start?: number;
  /** Bytes buffered before write() returns false, and the size of each direct write. Default 1 MiB. */
  highWaterMark?: number;
  /** Direct writes in flight at once. Default 4. */
  writeBehind?: number;
  /** The final size in bytes, if known: allocated when the stream opens (ENOSPC then, not midway). */
  size?: number;
  /** Grow the file ahead of the writes with fallocate. Default true. */
  preallocate?: boolean;
  /** Each write durable as it completes (RWF_DSYNC), and the size made durable before 'finish'. */
  dsync?: boolean;
  /** One fdatasync before 'finish': everything written is durable when 'finish' comes. */
  flush?: boolean;
  /** Default 'threadpool' (faster than io_uring for large sequential I/O here; see streams/options.ts). Not with `fd`. */
  engine?: 'auto' | EngineName;
  signal?: AbortSignal;
}

/** Why a stream (or whole-file helper) uses the page cache: emitted as 'fallback'. */
export interface FallbackInfo {
  path: string;
  reason: string;
}

export function fallbackReason(file: DirectFile): string {
  return `direct I/O is not available on ${file.capabilities.fsType} (${file.capabilities.direct.reason ?? 'refused'}): buffered with dontcache`;
}

export class DirectWriteStream extends Writable {
  readonly path: string;
  private readonly options: ResolvedWriteStream;
  private file: DirectFile | undefined;
  private writer: BlockWriter | undefined;

  /** `path` may be null with `options.fd` (as node:fs). */
  constructor(path: string | URL | Buffer | null | undefined, options?: WriteStreamOptions) {
    const o = resolveWriteStreamOptions(options);
    const p = streamPath(path, o.fd);
    super({ highWaterMark: o.chunk, signal: o.signal, decodeStrings: true });
    this.path = p;
    this.options = o;
  }

  /** Bytes whose writes have completed (durable too when `dsync`). */
  get bytesWritten(): number {
    return this.writer?.bytesWritten ?? 0;
  }

  /** True until the file is open. */
  get pending(): boolean {
    return this.file === undefined;
  }

  /** Whether writes go around the page cache; undefined until open. */
  get direct(): boolean | undefined {
    return this.file?.direct;
  }

  /** Direct writes issued so far, and how many are in flight now. */
  get stats(): { writesIssued: number; inFlight: number } {
    return { writesIssued: this.writer?.writesIssued ?? 0, inFlight: this.writer?.inFlightCount ?? 0 };
  }

  override _construct(callback: (error?: Error | null) => void): void {
    const o = this.options;
    const opened = o.fd
      ? Promise.resolve(o.fd)
      : open(this.path, {
          create: o.flags !== 'r+',
          exclusive: o.flags === 'wx',
          truncate: o.flags === 'w',
          mode: o.mode,
          engine: o.engine,
        });
    opened
      .then(async (file) => {
        this.file = file;
        this.writer = new BlockWriter(file, {
          start: o.append ? file.size : o.start,
          chunk: o.chunk,
          writeBehind: o.writeBehind,
          ...(o.size !== undefined ? { size: o.size } : {}),
          preallocate: o.preallocate,
          dsync: o.dsync,
          flush: o.flush,
          onError: (err) => this.destroy(err as Error),
        });
        await this.writer.begin();
        if (!file.direct) this.emit('fallback', { path: this.path, reason: fallbackReason(file) } satisfies FallbackInfo);
        // As node:fs: a stream given an fd opens nothing, so emits neither.
        if (!o.fd) {
          this.emit('open', file);
          this.emit('ready');
        }
      })
      .then(() => callback(), (err: Error) => callback(err));
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.writer!.write(chunk).then(() => callback(), (err: Error) => callback(err));
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.writer!.finish().then(() => callback(), (err: Error) => callback(err));
  }

  /** Waits for every write in flight to settle (each owns its buffer until then), then closes the file (with autoClose). */
  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const settled = this.writer ? this.writer.settle() : Promise.resolve();
    settled
      .then(() => (this.options.autoClose ? this.file?.close() : undefined))
      .then(
        () => callback(error),
        (closeError: Error) => callback(error ?? closeError),
      );
  }
}

export function createWriteStream(path: string | URL | Buffer | null | undefined, options?: WriteStreamOptions): DirectWriteStream {
  return new DirectWriteStream(path, options);
}
