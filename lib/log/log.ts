// openLog(): a durable append-only log with group commit on direct,
// preallocated, checksummed segments. docs/log.md says what it guarantees
// and what it costs; format.ts has the bytes, recovery.ts the reading back,
// segments.ts the files; this file is the group-commit writer and the API.
import { existsSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { DirectFile } from '../file';
import { OdirectError, fsCall } from '../errors';
import type { EngineName } from '../types';
import { ArgumentError, checkBoolean, checkEnum, checkOptions, checkPosition, rangeError, typeError } from '../validate';
import { alignedBuffer } from '../aligned';
import { registeredBuffer, releaseBuffer } from '../registered';
import {
  FLAG_CLOSE,
  FLAG_RESUME,
  FRAME_BYTES,
  KIND_BATCH,
  KIND_RECORD,
  checkBatchFrame,
  pad8,
  putFrame,
  recordFrameBytes,
  roundUp,
  sealFrame,
} from './format';
import { findAcknowledgedAfter, scanChain, walkChain, type ChainEnd } from './recovery';
import {
  listSegments,
  newSalt,
  openSegmentFile,
  prepareSegment,
  readHeader,
  segmentName,
  spareName,
  syncDir,
  writeHeader,
  SegmentReader,
  type SegmentFileOptions,
} from './segments';

export interface LogOptions {
  /** Create the directory and the first segment if missing. Default false. */
  create?: boolean;
  /** Bytes per segment file (new segments). Default 64 MiB. */
  segmentSize?: number;
  /** Largest record append() takes. Default 1 MiB, at most 64 MiB. */
  maxRecordSize?: number;
  /** Record bytes (with their 32-byte frames) one batch gathers before it is closed. Default 1 MiB. */
  maxBatchBytes?: number;
  /** Batches written at once; while all are in flight, appends gather in the next batch. Default 4. */
  maxBatchesInFlight?: number;
  /** Segments kept prepared ahead of the one being written. Default 1. */
  segmentsAhead?: number;
  engine?: 'auto' | EngineName;
}

export interface LogStats {
  /** Appends acknowledged (durable). */
  appends: number;
  /** Durable writes made: each acknowledged a batch of appends. */
  batches: number;
  /** Most appends acknowledged by one write. */
  largestBatch: number;
  /** Record bytes acknowledged. */
  bytes: number;
  /** Bytes the batches wrote: records, their frames, batch frames and padding. */
  bytesWritten: number;
  /** Of bytesWritten, zeros that fill each batch to the block boundary. */
  paddingBytes: number;
  /** Appends that waited for room: the bytes in flight were at their bound. */
  waited: number;
  /** Segments reused after truncateBefore retired them (a header write instead of writing zeros over a new file). */
  segmentsRecycled: number;
  /** Batches being written now. */
  inFlight: number;
  /** Segment files holding records. */
  segments: number;
  /** Segments prepared ahead of the one appends go to (written with zeros, ready to take batches). */
  segmentsPrepared: number;
  /** Oldest sequence kept (after truncateBefore), or the next one if the log is empty. */
  firstSequence: number;
  /** Last acknowledged sequence; 0 when none. */
  lastSequence: number;
  /** The last open found the empty batch close() writes at the end: the previous run closed cleanly. */
  openedClean: boolean;
}

export interface ReplayOptions {
  /** First sequence to yield. Default: the first one kept. */
  from?: number;
}

export interface LogRecord {
  sequence: number;
  data: Buffer;
}

/** A record that fails its checks in the middle of the log (media corruption, not a torn tail). */
export class LogCorruptError extends OdirectError {
  readonly segment: string;
  readonly offset: number;
  constructor(segment: string, offset: number, message: string) {
    super('ERR_LOG_CORRUPT', `log segment ${segment} is corrupt at offset ${offset}: ${message}`, { path: segment, position: offset });
    this.segment = segment;
    this.offset = offset;
  }
}

const MiB = 1 << 20;
const BLOCK = 4096;

interface Resolved {
  dir: string;
  create: boolean;
  segmentSize: number;
  maxRecordSize: number;
  maxBatchBytes: number;
  maxBatchesInFlight: number;
  segmentsAhead: number;
  engine: 'auto' | EngineName;
  /** options.segmentSize was given (else an existing log keeps its segments' size). */
  segmentSizeGiven: boolean;
}

function intOption(o: Record<string, unknown>, name: string, min: number, max: number, fallback: number): number {
  const v = o[name];
  if (v === undefined) return fallback;
  if (typeof v !== 'number') throw typeError(`options.${name}`, 'a number', v);
  if (!Number.isSafeInteger(v) || v < min || v > max) throw rangeError(`options.${name}`, `an integer from ${min} to ${max}`, v);
  return v;
}

function resolveOptions(dir: unknown, options: unknown): Resolved {
  if (typeof dir !== 'string' || dir.length === 0) throw typeError('dir', 'a non-empty string', dir);
  const o = checkOptions<LogOptions>(options, 'options') as Record<string, unknown>;
  const create = checkBoolean(o.create, 'options.create') ?? false;
  const engine = checkEnum(o.engine, 'options.engine', ['auto', 'uring', 'threadpool'] as const) ?? 'auto';
  const maxRecordSize = intOption(o, 'maxRecordSize', 1, 64 * MiB, MiB);
  const maxBatchBytes = intOption(o, 'maxBatchBytes', BLOCK, 64 * MiB, MiB);
  const maxBatchesInFlight = intOption(o, 'maxBatchesInFlight', 1, 64, 4);
  const segmentsAhead = intOption(o, 'segmentsAhead', 1, 16, 1);
  const segmentSize = intOption(o, 'segmentSize', 64 * 1024, 2 ** 40, 64 * MiB);
  if (segmentSize % BLOCK !== 0) throw rangeError('options.segmentSize', `a multiple of ${BLOCK}`, segmentSize);
  if (segmentSize < BLOCK + batchCapacity(maxBatchBytes, maxRecordSize)) {
    throw new ArgumentError(
      'ERR_OUT_OF_RANGE',
      `options.segmentSize (${segmentSize}) must hold the header block and one whole batch ` +
        `(${batchCapacity(maxBatchBytes, maxRecordSize)} bytes for maxBatchBytes ${maxBatchBytes}, maxRecordSize ${maxRecordSize})`,
    );
  }
  return {
    dir: path.resolve(dir),
    create,
    segmentSize,
    maxRecordSize,
    maxBatchBytes,
    maxBatchesInFlight,
    segmentsAhead,
    engine,
    segmentSizeGiven: o.segmentSize !== undefined,
  };
}

/** Bytes of one batch buffer: its frame, the records it may gather (or one largest record), padded to the block. */
function batchCapacity(maxBatchBytes: number, maxRecordSize: number): number {
  return roundUp(FRAME_BYTES + Math.max(maxBatchBytes, recordFrameBytes(maxRecordSize)), BLOCK);
}

interface Segment {
  index: number;
  salt: number;
  size: number;
  /** Sequence of its first record, once a batch went into it. */
  first?: number;
  /** The handle appends go through (the segment being written and the prepared ones). */
  file?: DirectFile;
}

interface Pending {
  sequence: number;
  resolve: (value: { sequence: number }) => void;
  reject: (err: unknown) => void;
}

interface Batch {
  buf: Buffer;
  /** Bytes used, from the batch frame through the last record's padding. */
  used: number;
  first: number;
  last: number;
  recordBytes: number;
  appends: Pending[];
  flags: number;
  state: 'gathering' | 'sealed' | 'writing' | 'written' | 'failed';
  error?: unknown;
}

/** Test-only switches (not exported from the package): mutations the crash tests must catch. */
export interface LogTestHooks {
  /** Acknowledge a batch as soon as its write is issued, not when it is durable. */
  acknowledgeBeforeWrite?: boolean;
}

export class DurableLog {
  readonly dir: string;
  private readonly o: Resolved;
  private readonly files: SegmentFileOptions;
  private readonly hooks: LogTestHooks;
  /** Segments holding records, oldest first; the last one is being written. */
  private readonly segments: Segment[];
  /** Where batches go: the last of `segments`, or a prepared one not entered yet. */
  private active: Segment;
  private cursor: number;
  private readonly ready: Segment[];
  /** Retired segments (truncateBefore) kept to be reused instead of preparing new files. */
  private readonly spares: string[];
  private nextIndex: number;
  private preparing: Promise<void> | undefined;
  private prepareError: unknown;
  private readonly run: number;
  private resumePending = true;
  private nextSequence: number;
  private durableThrough: number;
  private firstSequence: number;
  private readonly capacity: number;
  private readonly freeBuffers: Buffer[] = [];
  private readonly allBuffers: Buffer[] = [];
  private gathering: Batch | undefined;
  private readonly sealed: Batch[] = [];
  private readonly inFlight: Batch[] = [];
  private readonly blocked: Array<{ record: Uint8Array; pending: Pending }> = [];
  private pumpQueued = false;
  private failure: OdirectError | undefined;
  private closing: Promise<void> | undefined;
  private idleWaiters: Array<() => void> = [];
  private readonly counters = {
    appends: 0,
    batches: 0,
    largestBatch: 0,
    bytes: 0,
    bytesWritten: 0,
    paddingBytes: 0,
    waited: 0,
    segmentsRecycled: 0,
  };
  private readonly openedClean: boolean;

  private constructor(init: {
    o: Resolved;
    files: SegmentFileOptions;
    hooks: LogTestHooks;
    segments: Segment[];
    active: Segment;
    cursor: number;
    ready: Segment[];
    nextIndex: number;
    previousRun: number | undefined;
    spares: string[];
    durableThrough: number;
    firstSequence: number;
    openedClean: boolean;
  }) {
    this.o = init.o;
    this.dir = init.o.dir;
    this.files = init.files;
    this.hooks = init.hooks;
    this.segments = init.segments;
    this.active = init.active;
    this.cursor = init.cursor;
    this.ready = init.ready;
    this.nextIndex = init.nextIndex;
    this.spares = init.spares;
    this.run = newSalt(init.previousRun);
    this.durableThrough = init.durableThrough;
    this.nextSequence = init.durableThrough + 1;
    this.firstSequence = init.firstSequence;
    this.openedClean = init.openedClean;
    this.capacity = batchCapacity(init.o.maxBatchBytes, init.o.maxRecordSize);
    // The bound on bytes in flight: one buffer per batch being written, one gathering.
    for (let i = 0; i <= init.o.maxBatchesInFlight; i++) this.freeBuffers.push(registeredBuffer(this.capacity));
    this.allBuffers.push(...this.freeBuffers);
    this.prepareAhead();
  }

  // ---- opening and recovery --------------------------------------------------

  static async open(dir: string, options?: LogOptions, hooks: LogTestHooks = {}): Promise<DurableLog> {
    const o = resolveOptions(dir, options);
    if (!existsSync(o.dir)) {
      if (!o.create) throw new OdirectError('ENOENT', `ENOENT: log directory ${o.dir} does not exist (options.create is false)`, { path: o.dir });
      await fsCall(fsp.mkdir(o.dir, { recursive: true }), o.dir);
      await syncDir(path.dirname(o.dir));
    }
    const files: SegmentFileOptions = { dir: o.dir, segmentSize: o.segmentSize, blockSize: BLOCK, engine: o.engine };
    const { indexes, leftovers, spares } = await listSegments(o.dir);
    for (const name of leftovers) {
      const file = path.join(o.dir, name);
      await fsCall(fsp.rm(file, { force: true }), file);
    }
    if (indexes.length === 0 && !o.create) {
      throw new OdirectError('ENOENT', `ENOENT: ${o.dir} holds no log segments (options.create is false)`, { path: o.dir });
    }

    // Which segments hold records: a prefix whose first batch checks out and,
    // past the first, says every record before it was acknowledged (the writer
    // drains before it enters a segment). The last of them holds the tail.
    const entered: Segment[] = [];
    const rest: Array<{ index: number; size: number; salt?: number }> = [];
    for (const index of indexes) {
      const f = await openSegmentFile(files, index, true);
      try {
        const header = await readHeader(f, BLOCK);
        const size = typeof header === 'string' ? f.size : header.segmentSize;
        if (rest.length > 0 || typeof header === 'string' || header.index !== index || header.blockSize !== BLOCK || f.size < size) {
          rest.push({ index, size, salt: typeof header === 'string' ? undefined : header.salt });
          continue;
        }
        const reader = new SegmentReader(f, size, BLOCK);
        const check = checkBatchFrame(header.salt, await reader.bytes(BLOCK, FRAME_BYTES), 0, BLOCK, size);
        const prev = entered[entered.length - 1];
        const frame = check.frame;
        const follows = frame && (!prev || (frame.sequence > prev.first! && frame.durableThrough === frame.sequence - 1));
        if (frame && follows) entered.push({ index, salt: header.salt, size, first: frame.sequence });
        else rest.push({ index, size, salt: header.salt });
      } finally {
        await f.close();
      }
    }

    let tail: ChainEnd | undefined;
    const tailSegment = entered[entered.length - 1];
    if (tailSegment && !o.segmentSizeGiven && tailSegment.size >= BLOCK + batchCapacity(o.maxBatchBytes, o.maxRecordSize)) {
      o.segmentSize = tailSegment.size;
      files.segmentSize = tailSegment.size;
    }
    if (tailSegment) {
      const f = await openSegmentFile(files, tailSegment.index, true);
      try {
        ({ end: tail } = await walkChain(new SegmentReader(f, tailSegment.size, BLOCK), {
          salt: tailSegment.salt,
          blockSize: BLOCK,
          expect: tailSegment.first,
        }));
      } finally {
        await f.close();
      }
    }
    const next = tail ? tail.next : 1;
    const openedClean = tail?.closed === true;
    if (!openedClean) {
      // After a crash the chain may end at a torn batch (never acknowledged) or
      // at damage to acknowledged records: a later batch made after `next` was
      // acknowledged tells them apart.
      const places: Array<{ index: number; size: number; salt?: number; from: number }> = [
        ...(tailSegment ? [{ ...tailSegment, from: tail!.end }] : []),
        ...rest.map((r) => ({ ...r, from: BLOCK })),
      ];
      for (const place of places) {
        if (place.salt === undefined) continue;
        const f = await openSegmentFile(files, place.index, true);
        try {
          const found = await findAcknowledgedAfter(new SegmentReader(f, place.size, BLOCK), place.salt, BLOCK, place.from, next);
          if (found) {
            const where = tailSegment ?? place;
            const at = tail?.invalid?.offset ?? (tailSegment ? tail!.end : BLOCK);
            const why = tail?.invalid?.reason ?? (tailSegment ? 'the chain of batches ends here' : 'no readable first batch');
            throw new LogCorruptError(
              path.join(o.dir, segmentName(where.index)),
              at,
              `${why} (sequence ${next}), but the batch at offset ${found.offset} of ${segmentName(place.index)} ` +
                `was made when sequences through ${found.frame.durableThrough} were acknowledged`,
            );
          }
        } finally {
          await f.close();
        }
      }
    }

    // Segments past the tail are reused with a fresh salt: batches a crash left
    // in them can then never check out.
    const ready: Segment[] = [];
    for (const r of rest) {
      const f = await openSegmentFile(files, r.index, false);
      if (f.size < r.size || r.size !== o.segmentSize) {
        await f.close();
        const file = path.join(o.dir, segmentName(r.index));
        await fsCall(fsp.rm(file, { force: true }), file);
        continue;
      }
      const header = await writeHeader(f, files, r.index, r.salt);
      ready.push({ index: r.index, salt: header.salt, size: r.size, file: f });
    }
    const nextIndex = (indexes[indexes.length - 1] ?? 0) + 1;
    // Spares are reused only with the size new segments get.
    for (const spare of spares.splice(0)) {
      const st = await fsp.stat(spare).catch(() => undefined);
      if (st?.size === o.segmentSize) spares.push(spare);
      else await fsCall(fsp.rm(spare, { force: true }), spare);
    }
    let active: Segment;
    let cursor: number;
    if (tailSegment) {
      active = { ...tailSegment, file: await openSegmentFile(files, tailSegment.index, false) };
      entered[entered.length - 1] = active;
      cursor = tail!.end;
    } else {
      const prepared = ready.shift();
      if (prepared) active = prepared;
      else {
        const { file, header } = await prepareSegment(files, nextIndex);
        active = { index: header.index, salt: header.salt, size: header.segmentSize, file };
      }
      cursor = BLOCK;
    }
    return new DurableLog({
      o,
      files,
      hooks,
      segments: entered,
      active,
      cursor,
      ready,
      nextIndex: Math.max(nextIndex, active.index + 1),
      previousRun: tail?.run,
      spares,
      durableThrough: next - 1,
      firstSequence: entered[0]?.first ?? next,
      openedClean,
    });
  }

  // ---- appending -------------------------------------------------------------

  /**
   * Appends one record; resolves with its sequence once it is durable. The
   * record is copied when there is room in a batch buffer; when the bytes in
   * flight are at their bound the append waits, holding `record` until then,
   * so it must not change until append() resolves.
   */
  append(record: Uint8Array): Promise<{ sequence: number }> {
    if (!(record instanceof Uint8Array)) return Promise.reject(typeError('record', 'a Uint8Array or Buffer', record));
    if (record.byteLength > this.o.maxRecordSize) {
      return Promise.reject(rangeError('record.byteLength', `at most maxRecordSize (${this.o.maxRecordSize})`, record.byteLength));
    }
    if (this.failure) return Promise.reject(this.failure);
    if (this.closing) return Promise.reject(new OdirectError('ERR_LOG_CLOSED', `log ${this.dir} is closed`, { path: this.dir }));
    const sequence = this.nextSequence++;
    return new Promise((resolve, reject) => {
      const pending: Pending = { sequence, resolve, reject };
      if (this.blocked.length > 0 || !this.gather(record, pending)) {
        this.blocked.push({ record, pending });
        this.counters.waited++;
      }
      this.schedulePump();
    });
  }

  /** Frames and copies the record into the gathering batch; false when no buffer is free. */
  private gather(record: Uint8Array, pending: Pending): boolean {
    const frameBytes = recordFrameBytes(record.byteLength);
    let b = this.gathering;
    if (b && b.appends.length > 0 && b.used + frameBytes > FRAME_BYTES + this.o.maxBatchBytes) {
      this.seal(b);
      b = undefined;
    }
    if (!b) {
      const buf = this.freeBuffers.pop();
      if (!buf) return false;
      b = { buf, used: FRAME_BYTES, first: pending.sequence, last: pending.sequence - 1, recordBytes: 0, appends: [], flags: 0, state: 'gathering' };
      this.gathering = b;
    }
    const at = b.used;
    putFrame(b.buf, at, { length: record.byteLength, sequence: pending.sequence, durableThrough: 0, run: this.run, kind: KIND_RECORD, flags: 0 });
    b.buf.set(record, at + FRAME_BYTES);
    b.buf.fill(0, at + FRAME_BYTES + record.byteLength, at + frameBytes);
    sealFrame(this.run, b.buf, at, record);
    b.used += frameBytes;
    b.last = pending.sequence;
    b.recordBytes += record.byteLength;
    b.appends.push(pending);
    return true;
  }

  private seal(b: Batch): void {
    if (this.gathering === b) this.gathering = undefined;
    b.state = 'sealed';
    this.sealed.push(b);
  }

  private schedulePump(): void {
    if (this.pumpQueued) return;
    this.pumpQueued = true;
    // process.nextTick runs once the microtask queue has drained: every append
    // made in this tick (including those chained on promises) is gathered first.
    process.nextTick(() => {
      this.pumpQueued = false;
      this.pump();
    });
  }

  /** Writes sealed batches (and the gathering one) while fewer than maxBatchesInFlight are in flight. */
  private pump(): void {
    while (!this.failure && this.inFlight.length < this.o.maxBatchesInFlight) {
      if (this.sealed.length === 0) {
        if (this.gathering && this.gathering.appends.length > 0) this.seal(this.gathering);
        else break;
      }
      const b = this.sealed[0]!;
      const place = this.place(roundUp(b.used, BLOCK));
      if (!place) break;
      this.sealed.shift();
      this.write(b, place.segment, place.position);
    }
    this.checkIdle();
  }

  /**
   * Where the next batch of `bytes` goes: the cursor of the active segment,
   * or the start of the next prepared one. A batch never enters a new segment
   * while batches before it are in flight: the first batch of a segment then
   * says every sequence before it is durable, which is how open() knows the
   * segment before it is complete.
   */
  private place(bytes: number): { segment: Segment; position: number } | undefined {
    if (this.cursor + bytes <= this.active.size) {
      const position = this.cursor;
      this.cursor += bytes;
      return { segment: this.active, position };
    }
    if (this.inFlight.length > 0) return undefined; // pumped again as they complete
    const next = this.ready.shift();
    if (!next) {
      if (this.prepareError !== undefined && !this.preparing) this.fail(this.prepareError);
      else this.prepareAhead();
      return undefined;
    }
    // The segment left behind is complete; its handle is no longer needed for writing.
    void this.active.file?.close().catch(() => undefined);
    this.active.file = undefined;
    this.active = next;
    this.cursor = BLOCK;
    this.prepareAhead();
    return this.place(bytes);
  }

  private prepareAhead(): void {
    if (this.preparing || this.closing || this.failure || this.ready.length >= this.o.segmentsAhead) return;
    const index = this.nextIndex++;
    this.prepareError = undefined;
    const spare = this.spares.shift();
    this.preparing = prepareSegment(this.files, index, spare).then(
      ({ file, header }) => {
        this.preparing = undefined;
        if (this.closing || this.failure) {
          void file.close().catch(() => undefined);
          return;
        }
        this.ready.push({ index, salt: header.salt, size: header.segmentSize, file });
        if (spare) this.counters.segmentsRecycled++;
        this.prepareAhead();
        this.pump();
      },
      (err: unknown) => {
        this.preparing = undefined;
        this.prepareError = err;
        this.pump();
      },
    );
  }

  private write(b: Batch, segment: Segment, position: number): void {
    if (segment.first === undefined) {
      segment.first = b.first;
      this.segments.push(segment);
    }
    const flags = b.flags | (this.resumePending ? FLAG_RESUME : 0);
    this.resumePending = false;
    putFrame(b.buf, 0, {
      length: b.used - FRAME_BYTES,
      sequence: b.first,
      durableThrough: this.durableThrough,
      run: this.run,
      kind: KIND_BATCH,
      flags,
    });
    sealFrame(segment.salt, b.buf, 0);
    const padded = roundUp(b.used, BLOCK);
    b.buf.fill(0, b.used, padded);
    b.state = 'writing';
    this.inFlight.push(b);
    this.counters.bytesWritten += padded;
    this.counters.paddingBytes += padded - b.used;
    if (this.hooks.acknowledgeBeforeWrite) {
      // The mutation: the appends resolve as the write is issued, not when it is durable.
      const early = b.appends.splice(0);
      queueMicrotask(() => {
        for (const p of early) p.resolve({ sequence: p.sequence });
      });
    }
    segment.file!.write(b.buf.subarray(0, padded), position, { dsync: true }).then(
      () => {
        b.state = 'written';
        this.drain();
      },
      (err: unknown) => {
        b.state = 'failed';
        b.error = err;
        this.fail(err);
        this.drain();
      },
    );
  }

  /** Acknowledges written batches in order; the first failed one rejects itself and all after it. */
  private drain(): void {
    while (this.inFlight.length > 0) {
      const b = this.inFlight[0]!;
      if (b.state === 'written') {
        this.inFlight.shift();
        this.durableThrough = b.last;
        this.counters.batches++;
        this.counters.appends += b.appends.length;
        this.counters.bytes += b.recordBytes;
        this.counters.largestBatch = Math.max(this.counters.largestBatch, b.appends.length);
        for (const p of b.appends) p.resolve({ sequence: p.sequence });
        this.freeBuffers.push(b.buf);
        continue;
      }
      if (b.state === 'failed') {
        for (const later of this.inFlight.splice(0)) for (const p of later.appends) p.reject(later === b ? this.failedBatchError(b) : this.failure);
      }
      break;
    }
    if (!this.failure) {
      while (this.blocked.length > 0 && this.gather(this.blocked[0]!.record, this.blocked[0]!.pending)) this.blocked.shift();
    }
    this.pump();
  }

  private failedBatchError(b: Batch): unknown {
    return b.error instanceof OdirectError ? b.error : this.failure;
  }

  /**
   * After a failed write (EIO, ENOSPC, a shut-down filesystem) or a segment
   * that could not be prepared, nothing more is written: every append not yet
   * acknowledged, and every later one, is rejected. Acknowledged records are
   * in blocks no later write touches.
   */
  private fail(err: unknown): void {
    if (this.failure) return;
    const code = err instanceof OdirectError || (err as { code?: unknown })?.code ? String((err as { code: unknown }).code) : 'ERR_LOG_FAILED';
    this.failure = new OdirectError(code, `log ${this.dir} stopped after a failed write: ${(err as Error)?.message ?? String(err)}`, {
      path: this.dir,
      cause: err,
      errno: (err as { errno?: number })?.errno,
    });
    const rejected: Pending[] = [];
    for (const b of this.sealed.splice(0)) rejected.push(...b.appends);
    if (this.gathering) rejected.push(...this.gathering.appends);
    this.gathering = undefined;
    for (const { pending } of this.blocked.splice(0)) rejected.push(pending);
    for (const p of rejected) p.reject(this.failure);
  }

  private checkIdle(): void {
    const idle =
      this.inFlight.length === 0 &&
      this.sealed.length === 0 &&
      this.blocked.length === 0 &&
      (!this.gathering || this.gathering.appends.length === 0);
    if (!idle) return;
    for (const w of this.idleWaiters.splice(0)) w();
  }

  private whenIdle(): Promise<void> {
    return new Promise((resolve) => {
      this.idleWaiters.push(resolve);
      this.schedulePump();
    });
  }

  // ---- closing ---------------------------------------------------------------

  /**
   * Waits for every append made before it, writes the empty closing batch
   * (so the next open knows the end is not a torn tail), and closes the
   * files. Works after a failure too: then it only waits and closes.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.whenIdle();
      if (!this.failure) {
        const place = this.place(BLOCK);
        if (place && place.segment.file) {
          const buf = this.freeBuffers.pop() ?? alignedBuffer(this.capacity);
          const b: Batch = { buf, used: FRAME_BYTES, first: this.nextSequence, last: this.nextSequence - 1, recordBytes: 0, appends: [], flags: FLAG_CLOSE, state: 'sealed' };
          this.write(b, place.segment, place.position);
          await this.whenIdle();
        }
      }
      await this.preparing?.catch(() => undefined);
      const handles = [this.active.file, ...this.ready.map((s) => s.file)];
      for (const f of handles) await f?.close().catch(() => undefined);
      this.active.file = undefined;
      // Back to the ring's registered memory, unless a write that never settled may still use one.
      if (this.inFlight.length === 0) for (const b of this.allBuffers) releaseBuffer(b);
    })();
    return this.closing;
  }

  // ---- reading ---------------------------------------------------------------

  /**
   * The records from `from` (default: the first kept) through the last one
   * acknowledged when replay() was called, in order, each checked. A record
   * that fails its checks before that point throws LogCorruptError.
   */
  async *replay(options?: ReplayOptions): AsyncGenerator<LogRecord, void, void> {
    const o = checkOptions<ReplayOptions>(options, 'options');
    const from = o.from === undefined ? this.firstSequence : checkPosition(o.from, 'options.from');
    if (from < this.firstSequence) {
      throw new OdirectError('ERR_LOG_TRUNCATED', `sequence ${from} is no longer kept: the log starts at ${this.firstSequence}`, {
        path: this.dir,
      });
    }
    const last = this.durableThrough;
    if (from > last) return;
    const segments = this.segments.slice();
    let i = 0;
    while (i + 1 < segments.length && segments[i + 1]!.first! <= from) i++;
    for (; i < segments.length; i++) {
      const seg = segments[i]!;
      const file = path.join(this.dir, segmentName(seg.index));
      const f = await openSegmentFile(this.files, seg.index, true);
      let end: ChainEnd;
      try {
        const chain = scanChain(new SegmentReader(f, seg.size, BLOCK), { salt: seg.salt, blockSize: BLOCK, expect: seg.first, stopAfter: last });
        for (;;) {
          const step = await chain.next();
          if (step.done) {
            end = step.value;
            break;
          }
          if (step.value.sequence >= from) yield { sequence: step.value.sequence, data: Buffer.from(step.value.data) };
        }
      } finally {
        await f.close().catch(() => undefined);
      }
      const nextFirst = segments[i + 1]?.first;
      const expected = nextFirst ?? last + 1;
      if (end.next !== expected && !(nextFirst === undefined && end.next > last)) {
        const at = end.invalid?.offset ?? end.end;
        const why = end.invalid?.reason ?? 'the segment ends here';
        throw new LogCorruptError(file, at, `${why}; sequence ${end.next} is missing (acknowledged records go on to ${last})`);
      }
      if (end.next > last) return;
    }
  }

  /**
   * Retention: removes every segment whose records all come before
   * `sequence`. Whole segments only, and never the one being written, so a
   * few records before `sequence` may stay. Resolves once the removal is
   * durable (directory synced).
   */
  async truncateBefore(sequence: number): Promise<{ segmentsRemoved: number; firstSequence: number }> {
    const seq = checkPosition(sequence, 'sequence');
    if (this.closing) throw new OdirectError('ERR_LOG_CLOSED', `log ${this.dir} is closed`, { path: this.dir });
    let removed = 0;
    while (this.segments.length > 1 && this.segments[1]!.first! <= seq && this.segments[0] !== this.active) {
      const seg = this.segments.shift()!;
      this.firstSequence = this.segments[0]!.first!;
      const file = path.join(this.dir, segmentName(seg.index));
      // Kept for reuse (up to segmentsAhead + 1 of them) when it has the size new segments get.
      if (this.spares.length <= this.o.segmentsAhead && seg.size === this.o.segmentSize) {
        const spare = spareName(this.dir, seg.index);
        await fsCall(fsp.rename(file, spare), file);
        this.spares.push(spare);
      } else await fsCall(fsp.rm(file, { force: true }), file);
      removed++;
    }
    if (removed > 0) {
      await syncDir(this.dir);
      this.prepareAhead();
    }
    return { segmentsRemoved: removed, firstSequence: this.firstSequence };
  }

  get stats(): LogStats {
    return {
      ...this.counters,
      inFlight: this.inFlight.length,
      segments: this.segments.length,
      segmentsPrepared: this.ready.length,
      firstSequence: this.firstSequence,
      lastSequence: this.durableThrough,
      openedClean: this.openedClean,
    };
  }
}

/** Opens (or with `create`, makes) the log in directory `dir`, recovering its tail. */
export function openLog(dir: string, options?: LogOptions): Promise<DurableLog> {
  return DurableLog.open(dir, options);
}
