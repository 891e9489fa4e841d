// DirectFile: the public handle, a thin surface. Every method goes through one
// guard (arguments, open handle, error context); a write or read is decided by
// one pure function (policies/route.ts) and done by the executor of its route
// (execute/). docs/architecture.md walks through it.
import { inspect } from 'node:util';
import { C, native } from './native';
import type { Engine } from './engines/engine';
import { selectEngine } from './engines/select';
import { OdirectError, UnsupportedError, withContext, type ErrorContext } from './errors';
import { FileContext } from './execute/context';
import { performRead } from './execute/read';
import { readSyncRoute, writeSyncRoute } from './execute/sync';
import { performWrite } from './execute/write';
import { writeBackAndDrop } from './execute/writeback';
import { resolveOpenOptions, resolveWriteOptions, type ResolvedOpen, type ResolvedWrite } from './options';
import { reopenWithoutDirect } from './policies/open';
import type { FileFacts, WriteRequest } from './policies/route';
import { probeOpenFile } from './probe';
import type { Capabilities, EngineName, FileStats, OpenOptions, WriteOptions, WriteResult } from './types';
import { checkBoolean, checkBytes, checkChunks, checkEnd, checkOptions, checkPosition, rangeError } from './validate';
import { abortable, AbortError, checkSignal, checkSignature, closedExplicitly, closeOnCollection, toStat, type DirectFileStat } from './habits';

function emptyStats(): FileStats {
  return {
    direct: 0,
    buffered: 0,
    bufferedFallback: 0,
    bounced: 0,
    readModifyWrite: 0,
    atomic: 0,
    reads: 0,
    bytesWritten: 0,
    bytesRead: 0,
    syncs: 0,
  };
}

const EISDIR = 21;
const EBADF = 9;

/** What a method needs of the handle: open, or open and writable. */
type Access = 'open' | 'write';

export class DirectFile {
  readonly path: string;
  readonly capabilities: Capabilities;
  readonly stats: FileStats = emptyStats();
  /** Writes go around the page cache (O_DIRECT opened and honoured by the filesystem). */
  readonly direct: boolean;
  readonly readOnly: boolean;
  private readonly file: FileContext;
  private closing: Promise<void> | undefined;

  private constructor(r: ResolvedOpen, fd: number, direct: boolean, caps: Capabilities, io: Engine, fileKey: string) {
    this.path = r.path;
    this.direct = direct;
    this.readOnly = r.readOnly;
    this.capabilities = caps;
    const facts: FileFacts = {
      path: r.path,
      caps,
      direct,
      directRequested: r.direct,
      openDsync: r.dsync,
      alignment: r.alignment,
      fallback: r.fallback,
      pageSize: native.pageSize,
    };
    this.file = new FileContext(facts, io, fd, r.flags, fileKey);
    // Registered in the ring's fixed-file table (io_uring), taken out before the fd
    // is closed: here, or by the collection safety net.
    // `release` must not refer to the handle or its FileContext, or they would never be collected.
    io.registerFile?.(fd);
    const { unshareLocks } = this.file;
    const release = (): void => {
      io.unregisterFile?.(fd);
      unshareLocks();
    };
    closeOnCollection(this.file, fd, r.path, release);
  }

  /** The file descriptor; -1 once close() was called (as FileHandle.fd). */
  get fd(): number {
    return this.closing ? -1 : this.file.fd;
  }

  get engine(): EngineName {
    return this.file.io.name;
  }

  /** The size this handle knows: at open, then after each completed write, allocate and truncate. */
  get size(): number {
    return this.file.size.value;
  }

  get closed(): boolean {
    return this.closing !== undefined;
  }

  static async open(path: string | URL | Buffer, options?: OpenOptions): Promise<DirectFile> {
    const r = resolveOpenOptions(path, options);
    const signal = checkSignal(options?.signal, 'options.signal');
    if (signal?.aborted) throw new AbortError(`open ${r.path}`, signal.reason);
    const io = selectEngine(r.engine, r.queueDepth);
    const fd = await DirectFile.openFd(r);
    let opened: DirectFile | undefined;
    try {
      // What opening told us about O_DIRECT; when it was not tried, probe tries it.
      const known = (r.flags & C.O_DIRECT) !== 0 ? { directError: undefined } : r.direct ? { directError: 'EINVAL' } : undefined;
      const caps = await probeOpenFile(r.path, fd, known);
      if (caps.kind === 'directory') {
        throw new OdirectError('EISDIR', `EISDIR: ${r.path} is a directory`, { errno: EISDIR, syscall: 'open', path: r.path });
      }
      const direct = r.direct && (r.flags & C.O_DIRECT) !== 0 && caps.direct.supported;
      if (r.direct && !direct && r.fallback === 'error') {
        throw new UnsupportedError('ERR_DIRECT_UNSUPPORTED', `direct I/O is not available on ${r.path}: ${caps.direct.reason}`, {
          path: r.path,
        });
      }
      const st = await native.statx(fd);
      // A block device is the same device through any node; a file is its device and inode.
      const fileKey = caps.kind === 'blockDevice' ? `block ${st.rdevMajor}:${st.rdevMinor}` : `${st.devMajor}:${st.devMinor} ${st.ino}`;
      // Aborted while opening: the fd is closed (below) and nothing else happened.
      if (signal?.aborted) throw new AbortError(`open ${r.path}`, signal.reason);
      opened = new DirectFile(r, fd, direct, caps, io, fileKey);
      return opened;
    } finally {
      if (!opened) await native.close(fd).catch(() => undefined);
    }
  }

  /** Opens with O_DIRECT when asked; a filesystem that refuses it (EINVAL) gets a buffered fd if fallback allows. */
  private static async openFd(r: ResolvedOpen): Promise<number> {
    try {
      if (!r.direct) return await native.open(r.path, r.flags, r.mode);
      try {
        const fd = await native.open(r.path, r.flags | C.O_DIRECT, r.mode);
        r.flags |= C.O_DIRECT;
        return fd;
      } catch (err) {
        if (!reopenWithoutDirect((err as { errno?: number }).errno, r.fallback)) throw err;
        return await native.open(r.path, r.flags, r.mode);
      }
    } catch (err) {
      throw withContext(err, { path: r.path });
    }
  }

  // ---- writes and reads: decided in policies/route.ts, done in execute/ -------

  write(data: Uint8Array, position: number, options?: WriteOptions): Promise<WriteResult> {
    // call()'s steps written out, for the most common call (issue 14): no closure,
    // and `arguments` is materialised only when there are more than two.
    try {
      if (arguments.length > 2) checkSignature(arguments, 'write(data, position, options?)', 2);
      const request = this.writeRequest([checkBytes(data, 'data')], checkPosition(position), resolveWriteOptions(options));
      this.checkOpen('write');
      return this.startWrite(request);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  writev(chunks: Uint8Array[], position: number, options?: WriteOptions): Promise<WriteResult> {
    return this.call('write', () => {
      checkSignature(arguments, 'writev(chunks, position, options?)', 2);
      const request = this.writeRequest(checkChunks(chunks), checkPosition(position), resolveWriteOptions(options));
      return () => this.startWrite(request);
    });
  }

  writeAtomic(data: Uint8Array, position: number, options?: Omit<WriteOptions, 'atomic' | 'cache'>): Promise<WriteResult> {
    return this.call('write', () => {
      checkSignature(arguments, 'writeAtomic(data, position, options?)', 2);
      const chunk = checkBytes(data, 'data');
      const o = checkOptions<WriteOptions>(options, 'options');
      const request = this.writeRequest([chunk], checkPosition(position), resolveWriteOptions({ ...o, atomic: true }));
      return () => this.startWrite(request);
    });
  }

  /** The checked request (its end within safe integers). */
  private writeRequest(chunks: Uint8Array[], position: number, w: ResolvedWrite): WriteRequest {
    let length = 0;
    for (const c of chunks) length += c.byteLength;
    checkEnd(position, length);
    return { chunks, position, length, atomic: w.atomic, cache: w.cache, dsync: w.dsync, signal: w.signal };
  }

  /** Runs a checked write; errors in flight get their context where they happen (execute/write.ts: a failed extending write is cut back first). */
  private startWrite(request: WriteRequest): Promise<WriteResult> {
    const { signal } = request;
    if (!signal) return performWrite(this.file, request, this.stats);
    return abortable(() => `write ${this.path} at ${request.position}`, signal, () => performWrite(this.file, request, this.stats));
  }

  /** Reads into `into` from `position`; returns bytes read (fewer at end of file). */
  read(into: Uint8Array, position: number, options?: ReadOptions): Promise<number> {
    // call()'s steps written out, as in write().
    try {
      if (arguments.length > 2) checkSignature(arguments, 'read(into, position, options?)', 2);
      const target = checkBytes(into, 'into');
      const pos = checkPosition(position);
      const signal = options === undefined ? undefined : checkSignal(checkOptions<ReadOptions>(options, 'options').signal, 'options.signal');
      checkEnd(pos, target.byteLength);
      this.checkOpen('open');
      // Counted in flight and given its error context by execute/read.ts.
      if (!signal) return performRead(this.file, { into: target, position: pos }, this.stats);
      return abortable(() => `read ${this.path} at ${pos}`, signal, () => performRead(this.file, { into: target, position: pos, signal }, this.stats));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Reads into each buffer in turn from `position` (as preadv: the file's bytes fill
   * them in order); returns the total read, fewer at end of file. Done as one read per
   * buffer, each routed as read() is, so a write racing with it may land between them.
   */
  readv(buffers: Uint8Array[], position: number, options?: ReadOptions): Promise<number> {
    return this.call('open', () => {
      checkSignature(arguments, 'readv(buffers, position, options?)', 2);
      const targets = checkChunks(buffers, 'buffers');
      const pos = checkPosition(position);
      const signal = checkSignal(checkOptions<ReadOptions>(options, 'options').signal, 'options.signal');
      const length = targets.reduce((n, b) => n + b.byteLength, 0);
      checkEnd(pos, length);
      const readAll = async (): Promise<number> => {
        let total = 0;
        for (const into of targets) {
          const n = await performRead(this.file, { into, position: pos + total, signal }, this.stats);
          total += n;
          if (n < into.byteLength) break; // end of file
        }
        return total;
      };
      return { context: { path: this.path, position: pos, length }, counted: true, run: () => abortable(() => `readv ${this.path} at ${pos}`, signal, readAll) };
    });
  }

  /** statx of the open file: size, blocks, mode, times (see DirectFileStat). */
  stat(): Promise<DirectFileStat> {
    return this.call('open', () => ({
      context: { path: this.path },
      counted: true,
      run: async () => toStat(await native.statx(this.file.fd)),
    }));
  }

  /**
   * write(), synchronously (as fs.writeSync): the same route (decideWrite), done
   * with pwritev2 on this thread, for start-up code and depth-1 paths. Returns
   * the bytes written. It never waits: if async I/O that it must be ordered
   * with is in flight (a write to an overlapping range, or, when it extends the
   * file, any I/O; a truncate or close under way) it throws OdirectError
   * ERR_SYNC_CONFLICT before any I/O. Routes through the page cache (cache
   * modes, fallback, a read-modify-write past EOF) and a direct write that
   * comes back short are not done synchronously: UnsupportedError
   * ERR_SYNC_UNSUPPORTED (use write()). execute/sync.ts.
   */
  writeSync(data: Uint8Array, position: number, options?: WriteOptions): number {
    const chunk = checkBytes(data, 'data');
    const pos = checkPosition(position);
    const w = resolveWriteOptions(options);
    checkEnd(pos, chunk.byteLength);
    this.checkOpen('write');
    const request: WriteRequest = { chunks: [chunk], position: pos, length: chunk.byteLength, atomic: w.atomic, cache: w.cache, dsync: w.dsync };
    return writeSyncRoute(this.file, request, this.stats);
  }

  /** read(), synchronously (as fs.readSync): preadv2 on this thread, same route and rules as writeSync. */
  readSync(into: Uint8Array, position: number): number {
    const target = checkBytes(into, 'into');
    const pos = checkPosition(position);
    checkEnd(pos, target.byteLength);
    this.checkOpen('open');
    return readSyncRoute(this.file, { into: target, position: pos }, this.stats);
  }

  // ---- whole-file operations -----------------------------------------------

  /** fsync (or fdatasync with dataOnly): everything written before is durable. */
  sync(options?: { dataOnly?: boolean }): Promise<void> {
    return this.call('open', () => {
      const o = checkOptions<{ dataOnly?: boolean }>(options, 'options');
      const dataOnly = checkBoolean(o.dataOnly, 'options.dataOnly') ?? false;
      return {
        context: { path: this.path },
        counted: true,
        run: async () => {
          await this.file.io.fsync(this.file.fd, dataOnly);
          this.stats.syncs++;
        },
      };
    });
  }

  /** Waits for I/O in flight, then sets the size; I/O issued after this call lands after it. */
  truncate(size: number): Promise<void> {
    return this.call('write', () => {
      const to = checkPosition(size, 'size');
      return {
        context: { path: this.path },
        run: () =>
          this.file.gate.exclusive(async () => {
            await this.file.io.ftruncate(this.file.fd, to);
            this.file.size.value = to;
          }),
      };
    });
  }

  /** Allocates blocks for [position, position+length) (fallocate mode 0: the size grows to cover it). */
  allocate(position: number, length: number): Promise<void> {
    return this.call('write', () => {
      const pos = checkPosition(position);
      const len = checkPosition(length, 'length');
      if (len === 0) throw rangeError('length', 'greater than 0', len);
      checkEnd(pos, len);
      const { file } = this;
      const run = () =>
        file.gate.write(pos + len, pos + len, async (knownSize) => {
          let sizeBefore = knownSize;
          try {
            if (pos + len > knownSize) sizeBefore = file.refreshSize();
            await file.io.fallocate(file.fd, 0, pos, len);
          } catch (err) {
            const failed = withContext(err, { path: this.path, position: pos, length: len });
            // ext4 can allocate part of the range, and grow the file, before ENOSPC.
            if (pos + len > sizeBefore) await file.truncateBack(sizeBefore, failed);
            throw failed;
          }
        });
      return { run };
    });
  }

  /** Waits for I/O in flight, then closes. Calls after this one fail with EBADF; a second close is a no-op. */
  close(): Promise<void> {
    if (!this.closing) closedExplicitly(this.file);
    this.closing ??= this.file.gate.exclusive(async () => {
      try {
        await this.file.closeBuffered();
        this.file.io.unregisterFile?.(this.file.fd);
        await native.close(this.file.fd);
      } catch (err) {
        throw withContext(err, { path: this.path }); // an OdirectError, as every other method's
      } finally {
        this.file.unshareLocks();
      }
    });
    return this.closing;
  }

  /** `await using file = await open(…)` closes it at the end of the block. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** console.log(file): what it is, not its internals. */
  [inspect.custom](depth: number, options: object, show: typeof inspect): string {
    const { path, engine, direct, size, closed } = this;
    return `DirectFile ${show({ path, fd: this.fd, engine, direct, size, closed }, options)}`;
  }

  /** How many pages of [position, position+length) are in the page cache now (mincore). */
  residentPages(position: number, length: number): Promise<number> {
    return this.call('open', () => {
      const pos = checkPosition(position);
      const len = checkPosition(length, 'length');
      // Counted in flight, so close() cannot free the fd under it.
      return { counted: true, run: () => native.residentPages(this.file.fd, pos, len) };
    });
  }

  /** Drops [position, position+length) from the page cache after writing it back. */
  dropCache(position = 0, length = 0): Promise<void> {
    return this.call('open', () => {
      const pos = checkPosition(position);
      const len = checkPosition(length, 'length');
      return { counted: true, run: () => writeBackAndDrop(this.file.io, this.file.fd, pos, len) };
    });
  }

  /**
   * The one guard of every public method, as node's fsCall: `prepare` checks the
   * arguments (a bad one becomes a rejection before any I/O, as for any async
   * API), then the handle must be open (and writable for `write` access), then
   * the I/O runs, counted in flight by the ordering gate (writes, allocate and
   * truncate are ordered by the gate itself), and a kernel error gets the path
   * and range it happened at.
   */
  private call<T>(access: Access, prepare: () => Call<T> | (() => Promise<T>)): Promise<T> {
    // Not async for the bare-function form: its promise is the caller's, without
    // the extra microtask steps an async wrapper adds (the fast path, issue 14).
    try {
      const prepared = prepare();
      this.checkOpen(access);
      if (typeof prepared === 'function') return prepared();
      return this.runCall(prepared);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  private async runCall<T>({ context, counted, run: io }: Call<T>): Promise<T> {
    const run = counted ? () => this.file.gate.run(io) : io;
    if (!context) return run();
    try {
      return await run();
    } catch (err) {
      throw withContext(err, context);
    }
  }

  /** Throws EBADF when the handle is closed (or read-only, for `write` access). */
  private checkOpen(access: Access): void {
    if (this.closing) throw new OdirectError('EBADF', `EBADF: ${this.path} is closed`, { errno: EBADF, path: this.path });
    if (access === 'write' && this.readOnly) {
      throw new OdirectError('EBADF', `EBADF: ${this.path} was opened read-only`, { errno: EBADF, path: this.path });
    }
  }
}

/** A checked call: its I/O, and the context a kernel error from it gets (none: it adds its own). A bare function: its I/O, nothing else. */
interface Call<T> {
  run: () => Promise<T>;
  context?: ErrorContext;
  /** Counted in flight (truncate and close wait for it); ordered calls are counted by the gate already. */
  counted?: boolean;
}

/** read() and readv() options. */
export interface ReadOptions {
  /** Aborts the read: before it is issued it never is; in flight, see docs/api-habits.md. */
  signal?: AbortSignal;
}

export function open(path: string | URL | Buffer, options?: OpenOptions): Promise<DirectFile> {
  return DirectFile.open(path, options);
}
