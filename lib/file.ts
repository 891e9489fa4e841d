// DirectFile: the public handle. Each write runs the steps of design.md in
// order: validate → atomic rules → alignment (direct / bounce / RMW / strict)
// → ordering → engine → fallback. Each step's policy lives in policies/.
import { C, native } from './native';
import type { Engine } from './engines/engine';
import { assertViewUnchanged } from './engines/caller-memory';
import { selectEngine } from './engines/select';
import { AtomicWriteError, OdirectError, UnsupportedError, withContext } from './errors';
import { alignmentError, findMisalignment, type Misalignment } from './policies/alignment';
import { checkAtomicResult, checkAtomicWrite, type AtomicRequest } from './policies/atomic';
import { atomicWriteNeedsExclusiveRange } from './policies/atomic-overlap';
import { durableWriteFlags, syncAfterDurableWrite } from './policies/durability';
import { bouncePool } from './policies/bounce-pool';
import { writeCached } from './policies/cache';
import { finishBuffered, skipBytes } from './policies/fallback';
import { OrderingGate } from './policies/ordering';
import { RangeLock } from './policies/range-lock';
import { alignedSpan, gather, partialBlocks, type Span } from './policies/rmw';
import { writeBackAndDrop } from './policies/writeback';
import { probeOpenFile } from './probe';
import type {
  AlignmentMode,
  Capabilities,
  CacheMode,
  EngineName,
  FallbackMode,
  FileStats,
  OpenOptions,
  WriteOptions,
  WriteResult,
} from './types';
import {
  ArgumentError,
  checkBoolean,
  checkBytes,
  checkChunks,
  checkEnd,
  checkEnum,
  checkOptions,
  checkPath,
  checkPosition,
  rangeError,
  typeError,
} from './validate';

interface ResolvedOpen {
  path: string;
  flags: number;
  mode: number;
  direct: boolean;
  readOnly: boolean;
  dsync: boolean;
  engine: 'auto' | EngineName;
  alignment: AlignmentMode;
  fallback: FallbackMode;
}

function resolveOpenOptions(path: unknown, options: unknown): ResolvedOpen {
  const p = checkPath(path);
  const o = checkOptions<OpenOptions>(options, 'options');
  const create = checkBoolean(o.create, 'options.create') ?? false;
  const exclusive = checkBoolean(o.exclusive, 'options.exclusive') ?? false;
  const truncate = checkBoolean(o.truncate, 'options.truncate') ?? false;
  const readOnly = checkBoolean(o.readOnly, 'options.readOnly') ?? false;
  const direct = checkBoolean(o.direct, 'options.direct') ?? true;
  const dsync = checkBoolean(o.dsync, 'options.dsync') ?? false;
  const engine = checkEnum(o.engine, 'options.engine', ['auto', 'uring', 'threadpool'] as const) ?? 'auto';
  const alignment = checkEnum(o.alignment, 'options.alignment', ['bounce', 'strict'] as const) ?? 'bounce';
  const fallback = checkEnum(o.fallback, 'options.fallback', ['buffered', 'error'] as const) ?? 'buffered';
  const mode = o.mode === undefined ? 0o644 : o.mode;
  if (typeof mode !== 'number') throw typeError('options.mode', 'a number', mode);
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) throw rangeError('options.mode', 'an integer from 0 to 0o7777', mode);
  if (o.queueDepth !== undefined) {
    if (typeof o.queueDepth !== 'number') throw typeError('options.queueDepth', 'a number', o.queueDepth);
    if (!Number.isInteger(o.queueDepth) || o.queueDepth < 1 || o.queueDepth > 4096) {
      throw rangeError('options.queueDepth', 'an integer from 1 to 4096', o.queueDepth);
    }
  }
  if (readOnly && (truncate || exclusive)) {
    throw new ArgumentError('ERR_INVALID_ARG_VALUE', 'options.readOnly cannot be combined with truncate or exclusive');
  }
  if (exclusive && !create) throw new ArgumentError('ERR_INVALID_ARG_VALUE', 'options.exclusive needs options.create');
  let flags = readOnly ? C.O_RDONLY : C.O_RDWR;
  if (create) flags |= C.O_CREAT;
  if (exclusive) flags |= C.O_EXCL;
  if (truncate) flags |= C.O_TRUNC;
  if (dsync) flags |= C.O_DSYNC;
  return { path: p, flags, mode, direct, readOnly, dsync, engine, alignment, fallback };
}

interface WritePlan {
  rwflags: number;
  /** How the direct form of this write breaks alignment, if it does. */
  misaligned?: Misalignment;
  /** The block-aligned span of a read-modify-write. */
  span?: Span;
  /** Where the bytes this write puts on disk end: past the known size it is an extending write. */
  reach: number;
}

interface ResolvedWrite {
  atomic: boolean;
  cache: CacheMode;
  dsync: boolean;
}

function resolveWriteOptions(options: unknown): ResolvedWrite {
  const o = checkOptions<WriteOptions>(options, 'options');
  const atomic = checkBoolean(o.atomic, 'options.atomic') ?? false;
  const cache = checkEnum(o.cache, 'options.cache', ['default', 'dontcache', 'writethrough'] as const) ?? 'default';
  const dsync = checkBoolean(o.dsync, 'options.dsync') ?? false;
  if (atomic && cache !== 'default') {
    throw new AtomicWriteError('ERR_ATOMIC_NOT_DIRECT', `atomic writes are direct only; options.cache '${cache}' would write buffered`);
  }
  return { atomic, cache, dsync };
}

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

const EINVAL = 22;
const EISDIR = 21;
const EIO = 5;

export class DirectFile {
  readonly path: string;
  readonly capabilities: Capabilities;
  readonly stats: FileStats = emptyStats();
  /** Writes go around the page cache (O_DIRECT opened and honoured by the filesystem). */
  readonly direct: boolean;
  /** Direct I/O was asked for (open option `direct`); if `direct` is false all the same, writes fall back. */
  private readonly directRequested: boolean;
  /** Opened O_DSYNC: every write is a durable write. */
  private readonly openDsync: boolean;
  readonly readOnly: boolean;
  private readonly io: Engine;
  private readonly fd: number;
  private bufferedFd: Promise<number> | undefined;
  private readonly openFlags: number;
  private readonly alignmentMode: AlignmentMode;
  private readonly fallbackMode: FallbackMode;
  private readonly gate: OrderingGate;
  private readonly locks = new RangeLock();
  private closing: Promise<void> | undefined;

  private constructor(r: ResolvedOpen, fd: number, direct: boolean, caps: Capabilities, io: Engine) {
    this.path = r.path;
    this.fd = fd;
    this.direct = direct;
    this.directRequested = r.direct;
    this.openDsync = r.dsync;
    this.readOnly = r.readOnly;
    this.capabilities = caps;
    this.io = io;
    this.openFlags = r.flags;
    this.alignmentMode = r.alignment;
    this.fallbackMode = r.fallback;
    this.gate = new OrderingGate(caps.size);
  }

  get engine(): EngineName {
    return this.io.name;
  }

  /** The size this handle knows: at open, then after each completed write, allocate and truncate. */
  get size(): number {
    return this.gate.knownSize;
  }

  get closed(): boolean {
    return this.closing !== undefined;
  }

  static async open(path: string, options?: OpenOptions): Promise<DirectFile> {
    const r = resolveOpenOptions(path, options);
    const io = selectEngine(r.engine);
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
      opened = new DirectFile(r, fd, direct, caps, io);
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
        if ((err as { errno?: number }).errno !== EINVAL || r.fallback === 'error') throw err;
        return await native.open(r.path, r.flags, r.mode);
      }
    } catch (err) {
      throw withContext(err, { path: r.path });
    }
  }

  // ---- writes ---------------------------------------------------------------

  write(data: Uint8Array, position: number, options?: WriteOptions): Promise<WriteResult> {
    return this.guard(() => {
      const chunk = checkBytes(data, 'data');
      return this.writeChunks([chunk], checkPosition(position), resolveWriteOptions(options));
    });
  }

  writev(chunks: Uint8Array[], position: number, options?: WriteOptions): Promise<WriteResult> {
    return this.guard(() => this.writeChunks(checkChunks(chunks), checkPosition(position), resolveWriteOptions(options)));
  }

  writeAtomic(data: Uint8Array, position: number, options?: Omit<WriteOptions, 'atomic' | 'cache'>): Promise<WriteResult> {
    return this.guard(() => {
      const chunk = checkBytes(data, 'data');
      const o = checkOptions<WriteOptions>(options, 'options');
      return this.writeChunks([chunk], checkPosition(position), resolveWriteOptions({ ...o, atomic: true }));
    });
  }

  private async writeChunks(chunks: Uint8Array[], position: number, w: ResolvedWrite): Promise<WriteResult> {
    this.assertWritable();
    let length = 0;
    for (const c of chunks) length += c.byteLength;
    checkEnd(position, length);
    const atomic: AtomicRequest | undefined = w.atomic
      ? { path: this.path, position, length, segments: chunks.length, direct: this.direct }
      : undefined;
    if (atomic) checkAtomicWrite(this.capabilities, atomic);
    const plan = this.planWrite(chunks, position, length, w);
    const end = position + length;
    const result = await this.gate.write(plan.reach, end, async (knownSize) => {
      let sizeBefore = knownSize;
      try {
        if (plan.reach > knownSize) sizeBefore = this.refreshSize(knownSize);
        return await this.routeWrite(chunks, position, length, w, plan, atomic, sizeBefore);
      } catch (err) {
        const failed = withContext(err, { path: this.path, position, length }, atomic ? AtomicWriteError : OdirectError);
        // A failed or short extending write leaves nothing past the old end of file.
        if (plan.reach > sizeBefore) await this.truncateBack(sizeBefore, failed);
        throw failed;
      }
    });
    this.stats.bytesWritten += result.bytesWritten;
    return result;
  }

  /**
   * Cuts the file back to its size before a failed extending write or allocate.
   * If that fails too, the caller's error says so: blocks may be left past EOF.
   */
  private async truncateBack(size: number, failed: unknown): Promise<void> {
    try {
      await this.io.ftruncate(this.fd, size);
    } catch (err) {
      if (failed instanceof Error) {
        failed.message += `; truncating back to ${size} bytes failed too (${(err as Error).message}): the file may keep blocks past that size`;
      }
    }
  }

  /**
   * The real size, read before an extending write (statx on the fd): another
   * handle or process may have grown or cut the file, and a failed extending
   * write is cut back to exactly this. Block devices keep their fixed size.
   */
  private refreshSize(knownSize: number): number {
    if (this.capabilities.kind === 'blockDevice') return knownSize;
    const size = native.statxSync(this.fd).size;
    this.gate.knownSize = size;
    return size;
  }

  /**
   * Decided once per write, before it is ordered: its RWF flags, how its
   * direct form breaks alignment (strict mode refuses here, before any I/O),
   * and how far it reaches. A read-modify-write writes whole blocks, so it
   * reaches the end of its last block: past EOF that makes it an extending
   * write, ordered with the others (else it could cut one off when it trims
   * the file back).
   */
  private planWrite(chunks: Uint8Array[], position: number, length: number, w: ResolvedWrite): WritePlan {
    const rwflags = (w.dsync ? durableWriteFlags() : 0) | (w.atomic ? C.RWF_ATOMIC : 0);
    if (w.cache !== 'default' || !this.direct) return { rwflags, reach: position + length };
    const { memAlign, offsetAlign } = this.capabilities.direct;
    const misaligned = findMisalignment(chunks, position, length, { memAlign, offsetAlign });
    if (!misaligned) return { rwflags, reach: position + length };
    if (this.alignmentMode === 'strict') throw alignmentError(misaligned, 'write', this.path, position, length);
    if (misaligned.remedy === 'bounce') return { rwflags, misaligned, reach: position + length };
    const span = alignedSpan(position, length, offsetAlign);
    return { rwflags, misaligned, span, reach: span.end };
  }

  private async routeWrite(
    chunks: Uint8Array[],
    position: number,
    length: number,
    w: ResolvedWrite,
    plan: WritePlan,
    atomic: AtomicRequest | undefined,
    sizeBefore: number,
  ): Promise<WriteResult> {
    if (w.cache !== 'default') {
      return this.underBufferedLock(position, length, sizeBefore, async () => {
        const target = { engine: this.io, fd: await this.buffered(), dontcache: this.capabilities.dontcache };
        const written = await writeCached(target, w.cache as Exclude<CacheMode, 'default'>, chunks, position, plan.rwflags);
        if (written < length) await finishBuffered(this.io, target.fd, chunks, position, length, written, plan.rwflags);
        this.stats.buffered++;
        return { bytesWritten: length, path: 'buffered' as const };
      });
    }
    if (!this.directRequested) {
      // The caller asked for ordinary page-cache I/O: no fallback, no cache dropping.
      return this.underBufferedLock(position, length, sizeBefore, async () => {
        await this.writeAll(chunks, position, length, plan.rwflags);
        this.stats.buffered++;
        return { bytesWritten: length, path: 'buffered' as const };
      });
    }
    if (!this.direct) return this.fallBack(chunks, position, length, 0, plan.rwflags, sizeBefore, 'direct I/O is not available');
    if (plan.span && plan.span.end > sizeBefore) {
      // Its last block lies past EOF. Written direct, the whole block would make
      // the file longer than asked until trimmed back (visible to readers, and a
      // trim by a stale size could cut another writer's data). ext4 writes
      // unaligned extending writes through the page cache; so does odirect.
      return this.fallBack(chunks, position, length, 0, plan.rwflags, sizeBefore, 'an unaligned write past the end of file');
    }
    const written = await this.writeDirect(chunks, position, length, plan);
    if (atomic) {
      checkAtomicResult(written, atomic);
      if ((w.dsync || this.openDsync) && syncAfterDurableWrite(this.capabilities, true) !== 'none') {
        await this.io.fsync(this.fd, true);
      }
      this.stats.atomic++;
    }
    if (written < length) {
      return this.fallBack(chunks, position, length, written, plan.rwflags, sizeBefore, `direct write was short (${written} of ${length} bytes)`);
    }
    this.stats.direct++;
    return { bytesWritten: length, path: 'direct' };
  }

  /**
   * A write through the page cache holds its whole pages exclusively (from the
   * old EOF's page when it extends, since it dirties that page too): a direct
   * write to the same page while it is dirty would collide with it ("Direct
   * I/O collision with buffered writes", and EIO after).
   */
  private underBufferedLock<T>(position: number, length: number, sizeBefore: number, io: () => Promise<T>): Promise<T> {
    const page = native.pageSize;
    const end = position + length;
    const from = end > sizeBefore ? Math.min(position, sizeBefore) : position;
    return this.underLock(from - (from % page), Math.ceil(end / page) * page, true, io);
  }

  /** A buffered write to the main fd, repeated until all of it is written. */
  private async writeAll(chunks: Uint8Array[], position: number, length: number, rwflags: number): Promise<void> {
    let done = 0;
    while (done < length) {
      const written = await this.io.writev(this.fd, skipBytes(chunks, done), position + done, rwflags);
      if (written <= 0) throw new OdirectError('ERR_SHORT_WRITE', `write at ${position + done} wrote nothing`, { path: this.path });
      done += written;
    }
  }

  private async fallBack(
    chunks: Uint8Array[],
    position: number,
    length: number,
    done: number,
    rwflags: number,
    sizeBefore: number,
    why: string,
  ): Promise<WriteResult> {
    if (this.fallbackMode === 'error') {
      throw new UnsupportedError('ERR_DIRECT_FAILED', `${why} on ${this.path} and options.fallback is 'error'`, {
        path: this.path,
        position,
        length,
      });
    }
    await this.underBufferedLock(position, length, sizeBefore, async () =>
      finishBuffered(this.io, await this.buffered(), chunks, position, length, done, rwflags),
    );
    this.stats.bufferedFallback++;
    return { bytesWritten: length, path: 'buffered' };
  }

  /** Issues the direct write as it is, through a bounce buffer, or as a read-modify-write. */
  private async writeDirect(chunks: Uint8Array[], position: number, length: number, plan: WritePlan) {
    const { rwflags, misaligned, span } = plan;
    // Overlapping software (CoW) atomic writes never run together: policies/atomic-overlap.ts.
    const exclusive = atomicWriteNeedsExclusiveRange(this.capabilities, (rwflags & C.RWF_ATOMIC) !== 0);
    if (!misaligned) return this.underLock(position, position + length, exclusive, () => this.io.writev(this.fd, chunks, position, rwflags));
    if (!span) {
      this.stats.bounced++;
      return this.underLock(position, position + length, exclusive, () => this.writeBounced(chunks, position, length, rwflags));
    }
    this.stats.readModifyWrite++;
    return this.underLock(span.start, span.end, true, () => this.readModifyWrite(chunks, position, length, span, rwflags));
  }

  private async underLock<T>(start: number, end: number, exclusive: boolean, io: () => Promise<T>): Promise<T> {
    const lock = this.locks.acquire(start, end, exclusive);
    const release = typeof lock === 'function' ? lock : await lock; // no microtask hop when uncontended
    try {
      return await io();
    } finally {
      release();
    }
  }

  private async writeBounced(chunks: Uint8Array[], position: number, length: number, rwflags: number): Promise<number> {
    const bounce = bouncePool.acquire(length);
    try {
      gather(chunks, bounce, 0);
      return await this.io.writev(this.fd, [bounce], position, rwflags);
    } finally {
      bouncePool.release(bounce);
    }
  }

  /** Returns how many of the caller's bytes reached the disk. The span lies inside the file. */
  private async readModifyWrite(
    chunks: Uint8Array[],
    position: number,
    length: number,
    span: Span,
    rwflags: number,
  ): Promise<number> {
    const align = this.capabilities.direct.offsetAlign;
    const bounce = bouncePool.acquire(span.end - span.start);
    try {
      for (const block of partialBlocks(span, position, length, align)) {
        const view = bounce.subarray(block - span.start, block - span.start + align);
        const n = await this.io.readv(this.fd, [view], block, 0);
        view.fill(0, n); // a block cut by EOF reads short: the rest is zeros in the file
      }
      gather(chunks, bounce, position - span.start);
      const written = await this.io.writev(this.fd, [bounce], span.start, rwflags);
      return Math.max(0, Math.min(length, span.start + written - position));
    } finally {
      bouncePool.release(bounce);
    }
  }

  /** A buffered fd: the main one when it is not O_DIRECT, else a second one opened on first use. */
  private buffered(): Promise<number> {
    if (!(this.openFlags & C.O_DIRECT)) return Promise.resolve(this.fd);
    // Reopened through /proc/self/fd: the same inode even if the path was renamed or unlinked.
    this.bufferedFd ??= native.open(`/proc/self/fd/${this.fd}`, this.openFlags & ~C.O_DIRECT & ~C.O_CREAT & ~C.O_TRUNC & ~C.O_EXCL, 0);
    return this.bufferedFd;
  }

  // ---- reads ----------------------------------------------------------------

  /** Reads into `into` from `position`; returns bytes read (fewer at end of file). */
  read(into: Uint8Array, position: number): Promise<number> {
    return this.guard(async () => {
      const target = checkBytes(into, 'into');
      const pos = checkPosition(position);
      checkEnd(pos, target.byteLength);
      this.assertOpen();
      const n = await this.gate
        .run(() => this.readAt(target, pos))
        .catch((err: unknown) => {
          throw withContext(err, { path: this.path, position: pos, length: target.byteLength });
        });
      this.stats.reads++;
      this.stats.bytesRead += n;
      return n;
    });
  }

  private async readAt(into: Uint8Array, position: number): Promise<number> {
    if (!this.direct) return this.io.readv(await this.buffered(), [into], position, 0);
    const { memAlign, readOffsetAlign } = this.capabilities.direct;
    const misaligned = findMisalignment([into], position, into.byteLength, { memAlign, offsetAlign: readOffsetAlign });
    if (misaligned && this.alignmentMode === 'strict') throw alignmentError(misaligned, 'read', this.path, position, into.byteLength);
    const length = this.readableLength(position, into.byteLength, readOffsetAlign, false);
    try {
      return await this.readDirect(into, position, length, misaligned !== undefined);
    } catch (err) {
      // The size this handle knows can be stale (another handle cut the file):
      // if the read ran past the block holding EOF, ask again, clamped, once.
      if ((err as { errno?: number }).errno !== EIO) throw err;
      const clamped = this.readableLength(position, into.byteLength, readOffsetAlign, true);
      if (clamped >= length) throw err;
      return this.readDirect(into, position, clamped, misaligned !== undefined);
    }
  }

  /** Reads `length` bytes (a prefix of `into`) at `position`, through a bounce buffer if `into` is misaligned. */
  private async readDirect(into: Uint8Array, position: number, length: number, bounced: boolean): Promise<number> {
    if (length === 0) return 0;
    const align = this.capabilities.direct.readOffsetAlign;
    // An aligned request clamped to an aligned limit stays aligned.
    if (!bounced) return this.io.readv(this.fd, [length === into.byteLength ? into : into.subarray(0, length)], position, 0);
    // Read the enclosing aligned range and copy out the part asked for.
    this.stats.bounced++;
    const span = alignedSpan(position, length, align);
    const bounce = bouncePool.acquire(span.end - span.start);
    try {
      const intoLength = into.byteLength;
      const n = await this.io.readv(this.fd, [bounce], span.start, 0);
      const available = Math.max(0, Math.min(length, span.start + n - position));
      assertViewUnchanged(into, intoLength); // detached or shrunk while the read ran: a typed error
      into.set(bounce.subarray(position - span.start, position - span.start + available));
      return available;
    } finally {
      bouncePool.release(bounce);
    }
  }

  /**
   * How much of a read to ask the kernel for: never past the block that holds
   * EOF. Nothing is there to read, and on XFS (6.18) a direct read far past
   * EOF after an extending atomic write and a buffered write beyond it fails
   * with EIO (reproduced with raw syscalls). The real size is read (statx)
   * when the read goes past the size this handle knows, or when `fresh`.
   */
  private readableLength(position: number, length: number, align: number, fresh: boolean): number {
    if (this.capabilities.kind === 'blockDevice') return length;
    if (!fresh && position + length <= this.gate.knownSize) return length;
    const size = native.statxSync(this.fd).size;
    if (position >= size) return 0;
    const limit = Math.ceil(size / align) * align;
    return Math.min(length, limit - position);
  }

  // ---- whole-file operations -----------------------------------------------

  /** fsync (or fdatasync with dataOnly): everything written before is durable. */
  sync(options?: { dataOnly?: boolean }): Promise<void> {
    return this.guard(async () => {
      const o = checkOptions<{ dataOnly?: boolean }>(options, 'options');
      const dataOnly = checkBoolean(o.dataOnly, 'options.dataOnly') ?? false;
      this.assertOpen();
      await this.gate.run(() => this.io.fsync(this.fd, dataOnly)).catch((err: unknown) => {
        throw withContext(err, { path: this.path });
      });
      this.stats.syncs++;
    });
  }

  /** Waits for I/O in flight, then sets the size; I/O issued after this call lands after it. */
  truncate(size: number): Promise<void> {
    return this.guard(async () => {
      const to = checkPosition(size, 'size');
      this.assertWritable();
      await this.gate
        .exclusive(async () => {
          await this.io.ftruncate(this.fd, to);
          this.gate.knownSize = to;
        })
        .catch((err: unknown) => {
          throw withContext(err, { path: this.path });
        });
    });
  }

  /** Allocates blocks for [position, position+length) (fallocate mode 0: the size grows to cover it). */
  allocate(position: number, length: number): Promise<void> {
    return this.guard(async () => {
      const pos = checkPosition(position);
      const len = checkPosition(length, 'length');
      if (len === 0) throw rangeError('length', 'greater than 0', len);
      checkEnd(pos, len);
      this.assertWritable();
      await this.gate.write(pos + len, pos + len, async (knownSize) => {
        let sizeBefore = knownSize;
        try {
          if (pos + len > knownSize) sizeBefore = this.refreshSize(knownSize);
          await this.io.fallocate(this.fd, 0, pos, len);
        } catch (err) {
          const failed = withContext(err, { path: this.path, position: pos, length: len });
          // ext4 can allocate part of the range, and grow the file, before ENOSPC.
          if (pos + len > sizeBefore) await this.truncateBack(sizeBefore, failed);
          throw failed;
        }
      });
    });
  }

  /** Waits for I/O in flight, then closes. Calls after this one fail with EBADF; a second close is a no-op. */
  close(): Promise<void> {
    this.closing ??= this.gate.exclusive(async () => {
      // The second fd may never have opened (the open failed): then there is nothing to close.
      const buffered = this.bufferedFd ? await this.bufferedFd.catch(() => -1) : -1;
      if (buffered >= 0 && buffered !== this.fd) await native.close(buffered).catch(() => undefined);
      await native.close(this.fd);
    });
    return this.closing;
  }

  /** How many pages of [position, position+length) are in the page cache now (mincore). */
  residentPages(position: number, length: number): Promise<number> {
    return this.guard(() => {
      const pos = checkPosition(position);
      const len = checkPosition(length, 'length');
      this.assertOpen();
      // Counted in flight, so close() cannot free the fd under it.
      return this.gate.run(() => native.residentPages(this.fd, pos, len));
    });
  }

  /** Drops [position, position+length) from the page cache after writing it back. */
  dropCache(position = 0, length = 0): Promise<void> {
    return this.guard(async () => {
      const pos = checkPosition(position);
      const len = checkPosition(length, 'length');
      this.assertOpen();
      await this.gate.run(() => writeBackAndDrop(this.io, this.fd, pos, len));
    });
  }

  private assertOpen(): void {
    if (this.closing) throw new OdirectError('EBADF', `EBADF: ${this.path} is closed`, { errno: 9, path: this.path });
  }

  private assertWritable(): void {
    this.assertOpen();
    if (this.readOnly) throw new OdirectError('EBADF', `EBADF: ${this.path} was opened read-only`, { errno: 9, path: this.path });
  }

  /** Argument errors thrown synchronously become rejections, as for any async API. */
  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    return fn();
  }
}

export function open(path: string, options?: OpenOptions): Promise<DirectFile> {
  return DirectFile.open(path, options);
}
