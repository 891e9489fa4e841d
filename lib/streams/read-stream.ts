// createReadStream: a node:stream Readable that reads direct, `readAhead`
// aligned reads in flight, and hands out the chunks in file order.
//
// - Reads are aligned (offset, length and buffer), each into its own buffer,
//   which is then handed to the consumer (no copy); the first and last chunks
//   are views of just the bytes asked for, so an unaligned `start`/`end` and
//   a partial last block at EOF give exactly the bytes of the range.
// - Backpressure: new reads are issued only while the stream wants data
//   (after _read(), until push() returns false). At most `readAhead` reads
//   are in flight, so a slow consumer holds at most highWaterMark buffered
//   plus `readAhead` chunks.
// - destroy() stops issuing, waits for the reads in flight to settle, then
//   closes the file; 'close' comes after that. A read in flight keeps its
//   buffer referenced until it settles, so no I/O lands in freed memory.
//
// Differences from node:fs's ReadStream: highWaterMark defaults to 1 MiB (and
// is the size of each read, rounded up to the alignment); no `encoding`
// option (use setEncoding); the file is read up to its size when the stream
// opened (or `end`), a file that grows meanwhile is not followed; `flags` is
// 'r' only. Where the filesystem has no direct I/O the reads are buffered,
// with readahead off, and each chunk's pages are dropped after it is read
// (uncached-reader.ts): `direct` is false and a 'fallback' event says why.
// options.fd takes a DirectFile that is already open (not a raw number: see
// checkStreamFd in options.ts); autoClose (default true) says whether the
// stream closes it, as node:fs.
import { Readable } from 'node:stream';
import { alignedBuffer } from '../aligned';
import { open, type DirectFile } from '../file';
import type { EngineName } from '../types';
import { alignDown, alignUp, resolveReadOptions, streamPath, type ResolvedRead } from './options';
import { UncachedReader } from './uncached-reader';
import { fallbackReason, type FallbackInfo } from './write-stream';

export interface ReadStreamOptions {
  flags?: 'r';
  /** An open DirectFile to read instead of opening `path` (a raw fd number is refused). */
  fd?: DirectFile;
  /** Close the file at the end, on error or destroy. Default true; false leaves it open, also a `fd` given. */
  autoClose?: boolean;
  /** First byte to read. Default 0. */
  start?: number;
  /** Last byte to read, inclusive (as in node:fs). Default: to the end of the file. */
  end?: number;
  /** Bytes per read and per chunk handed out (rounded up to the alignment for the read). Default 1 MiB. */
  highWaterMark?: number;
  /** Reads in flight at once. Default 4. */
  readAhead?: number;
  /** Default 'threadpool' (faster than io_uring for large sequential I/O here; see streams/options.ts). Not with `fd`. */
  engine?: 'auto' | EngineName;
  signal?: AbortSignal;
}

type Settled = { data: Buffer } | { error: unknown };

export class DirectReadStream extends Readable {
  readonly path: string;
  private readonly options: ResolvedRead;
  private file: DirectFile | undefined;
  private align = 4096;
  private chunk = 0;
  /** Next aligned offset to read from, and where reading stops (exclusive). */
  private nextOffset = 0;
  private limit = 0;
  /** Reads issued and delivered, by sequence number; completed reads wait here for their turn. */
  private issued = 0;
  private delivered = 0;
  private readonly ready = new Map<number, Settled>();
  private readonly inFlight = new Set<Promise<void>>();
  private wanting = false;
  private eof = false;
  private stopped = false;
  /** Without direct I/O: reads that leave nothing cached. */
  private uncached: UncachedReader | undefined;
  bytesRead = 0;
  /** Reads issued so far (for checking read-ahead stays bounded). */
  readsIssued = 0;

  /** `path` may be null with `options.fd` (as node:fs). */
  constructor(path: string | URL | Buffer | null | undefined, options?: ReadStreamOptions) {
    const o = resolveReadOptions(options);
    const p = streamPath(path, o.fd);
    super({ highWaterMark: o.chunk, signal: o.signal });
    this.path = p;
    this.options = o;
  }

  get pending(): boolean {
    return this.file === undefined;
  }

  get direct(): boolean | undefined {
    return this.file?.direct;
  }

  get inFlightCount(): number {
    return this.inFlight.size;
  }

  override _construct(callback: (error?: Error | null) => void): void {
    const o = this.options;
    (o.fd ? Promise.resolve(o.fd) : open(this.path, { readOnly: true, engine: o.engine }))
      .then(async (file) => {
        this.file = file;
        if (!file.direct) this.uncached = await UncachedReader.open(this.path);
        if (file.direct) this.align = Math.max(this.align, file.capabilities.direct.readOffsetAlign);
        this.chunk = alignUp(o.chunk, this.align);
        this.nextOffset = alignDown(o.start, this.align);
        this.limit = Math.min(o.endExclusive, file.size);
        if (!file.direct) this.emit('fallback', { path: this.path, reason: fallbackReason(file) } satisfies FallbackInfo);
        // As node:fs: a stream given an fd opens nothing, so emits neither.
        if (!o.fd) {
          this.emit('open', file);
          this.emit('ready');
        }
        callback();
      })
      .catch((err: Error) => callback(err));
  }

  override _read(): void {
    this.wanting = true;
    this.pump();
  }

  private pump(): void {
    if (this.stopped) return;
    if (this.nothingLeft()) {
      if (this.inFlight.size === 0 && this.ready.size === 0) {
        this.stopped = true;
        this.push(null);
      }
      return;
    }
    // Reads done but not yet handed out (a later one finished first) count against readAhead too.
    while (this.wanting && this.inFlight.size + this.ready.size < this.options.readAhead && !this.nothingLeft()) this.issue();
  }

  private nothingLeft(): boolean {
    return this.eof || this.nextOffset >= this.limit;
  }

  private issue(): void {
    const file = this.file!;
    const seq = this.issued++;
    const position = this.nextOffset;
    const length = Math.min(this.chunk, alignUp(this.limit, this.align) - position);
    this.nextOffset += length;
    this.readsIssued++;
    // This read owns `into` until it settles; then it is handed on, never reused.
    const into = alignedBuffer(length, this.align);
    const read = async (): Promise<Settled> => {
      const n = await this.readChunk(into, position);
      return { data: this.slice(into, position, n) };
    };
    const tracked: Promise<void> = read()
      .catch((error: unknown) => ({ error }))
      .then((settled) => {
        this.inFlight.delete(tracked);
        this.ready.set(seq, settled);
        this.deliver();
      });
    this.inFlight.add(tracked);
  }

  /** One aligned read: direct, or buffered and dropped from the cache after. */
  protected readChunk(into: Buffer, position: number): Promise<number> {
    return this.uncached ? this.uncached.read(into, position) : this.file!.read(into, position);
  }

  /** The bytes of [position, position+n) inside [start, limit). */
  private slice(into: Buffer, position: number, n: number): Buffer {
    const from = Math.max(0, this.options.start - position);
    const to = Math.min(n, this.limit - position);
    if (n < into.byteLength && position + n < this.limit) this.eof = true; // the file was shorter than at open
    return to > from ? into.subarray(from, to) : into.subarray(0, 0);
  }

  /** Pushes completed reads in order; stops issuing when the consumer has enough. */
  private deliver(): void {
    if (this.stopped) return;
    for (let next = this.ready.get(this.delivered); next !== undefined; next = this.ready.get(this.delivered)) {
      this.ready.delete(this.delivered++);
      if ('error' in next) {
        this.stopped = true;
        this.destroy(next.error as Error);
        return;
      }
      if (next.data.byteLength === 0) continue;
      this.bytesRead += next.data.byteLength;
      if (!this.push(next.data)) this.wanting = false;
    }
    this.pump();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.stopped = true;
    const settle = async () => {
      while (this.inFlight.size > 0) await Promise.all(this.inFlight);
      this.ready.clear();
      await this.uncached?.close();
      if (this.options.autoClose) await this.file?.close();
    };
    settle().then(
      () => callback(error),
      (closeError: Error) => callback(error ?? closeError),
    );
  }
}

export function createReadStream(path: string | URL | Buffer | null | undefined, options?: ReadStreamOptions): DirectReadStream {
  return new DirectReadStream(path, options);
}
