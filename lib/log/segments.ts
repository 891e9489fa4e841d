// Segment files: naming, preparation (allocated, written with zeros, header
// made durable, then renamed into place), re-salting, reading through a
// window, and removal. Only DirectFile's public methods touch the files.
import { randomInt } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { alignedBuffer } from '../aligned';
import { OdirectError, fsCall } from '../errors';
import { open, type DirectFile } from '../file';
import type { EngineName } from '../types';
import { SEGMENT_VERSION, decodeSegmentHeader, encodeSegmentHeader, roundUp, type SegmentHeader } from './format';
import type { SegmentBytes } from './recovery';

const SUFFIX = '.odlog';
const PREP_PREFIX = '.prep-';
const SPARE_PREFIX = '.spare-';
/** Zeros are written in pieces of this size while a segment is prepared. */
const ZERO_CHUNK = 1 << 20;
/** Reads of a segment go through a window of at least this much. */
const READ_WINDOW = 1 << 20;

export function segmentName(index: number): string {
  return `${String(index).padStart(16, '0')}${SUFFIX}`;
}

/** Indexes of the segment files in `dir`, ascending; leftovers of an interrupted preparation; retired segments kept for reuse. */
export async function listSegments(dir: string): Promise<{ indexes: number[]; leftovers: string[]; spares: string[] }> {
  const names = await fsCall(fsp.readdir(dir), dir);
  const indexes: number[] = [];
  const leftovers: string[] = [];
  const spares: string[] = [];
  for (const name of names) {
    if (name.startsWith(PREP_PREFIX)) leftovers.push(name);
    else if (name.startsWith(SPARE_PREFIX)) spares.push(path.join(dir, name));
    else if (/^\d{16}\.odlog$/.test(name)) indexes.push(Number(name.slice(0, 16)));
  }
  indexes.sort((a, b) => a - b);
  return { indexes, leftovers, spares };
}

/** The name a retired segment waits under until it is reused. */
export function spareName(dir: string, index: number): string {
  return path.join(dir, `${SPARE_PREFIX}${segmentName(index)}`);
}

export function newSalt(avoid?: number): number {
  for (;;) {
    const salt = randomInt(1, 0xffff_ffff);
    if (salt !== avoid) return salt;
  }
}

/** fsync of the directory: a created, renamed or removed segment stays so after a crash. */
export async function syncDir(dir: string): Promise<void> {
  const handle = await fsCall(fsp.open(dir, 'r'), dir);
  try {
    await fsCall(handle.sync(), dir);
  } finally {
    await fsCall(handle.close(), dir);
  }
}

export interface SegmentFileOptions {
  dir: string;
  segmentSize: number;
  blockSize: number;
  engine: 'auto' | EngineName;
}

async function openSegment(file: string, o: SegmentFileOptions, create: boolean): Promise<DirectFile> {
  return open(file, { create, engine: o.engine, alignment: 'strict' });
}

/** Writes block 0 (the header with a fresh salt) durably. */
export async function writeHeader(f: DirectFile, o: SegmentFileOptions, index: number, avoidSalt?: number): Promise<SegmentHeader> {
  const header: SegmentHeader = {
    version: SEGMENT_VERSION,
    blockSize: o.blockSize,
    segmentSize: o.segmentSize,
    salt: newSalt(avoidSalt),
    index,
  };
  const block = alignedBuffer(o.blockSize);
  encodeSegmentHeader(header, block);
  await f.write(block, 0, { dsync: true });
  return header;
}

/**
 * A new segment, ready for appends: allocated (fallocate), every block
 * written once with zeros so that appends overwrite written blocks (a direct
 * write into an unwritten extent must log the extent's conversion before
 * RWF_DSYNC completes: docs/log.md), its header durable, then renamed into
 * place and the directory synced. An interrupted preparation leaves only a
 * .prep- file, removed on the next open.
 */
export async function prepareSegment(o: SegmentFileOptions, index: number, spare?: string): Promise<{ file: DirectFile; header: SegmentHeader }> {
  if (spare) return recycleSegment(o, index, spare);
  const tmp = path.join(o.dir, `${PREP_PREFIX}${segmentName(index)}`);
  const f = await openSegment(tmp, o, true);
  try {
    await f.truncate(0);
    await f.allocate(0, o.segmentSize);
    const zeros = alignedBuffer(Math.min(ZERO_CHUNK, o.segmentSize));
    for (let at = o.blockSize; at < o.segmentSize; at += zeros.byteLength) {
      const n = Math.min(zeros.byteLength, o.segmentSize - at);
      await f.write(n === zeros.byteLength ? zeros : zeros.subarray(0, n), at);
    }
    const header = await writeHeader(f, o, index);
    await f.sync({ dataOnly: true });
    await fsCall(fsp.rename(tmp, path.join(o.dir, segmentName(index))), tmp);
    await syncDir(o.dir);
    return { file: f, header };
  } catch (err) {
    await f.close().catch(() => undefined);
    await fsp.rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
}

/**
 * A retired segment made ready again: every block of it was written before
 * (zeros, then batches), so only its header changes: a new index and a fresh
 * salt, durable before it is renamed into place. Its old batches then fail
 * their checksums. A crash before the rename leaves it a spare.
 */
async function recycleSegment(o: SegmentFileOptions, index: number, spare: string): Promise<{ file: DirectFile; header: SegmentHeader }> {
  const f = await openSegment(spare, o, false);
  try {
    if (f.size !== o.segmentSize) {
      throw new OdirectError('ERR_LOG_SEGMENT_SIZE', `spare segment ${spare} is ${f.size} bytes, not ${o.segmentSize}`, { path: spare });
    }
    const header = await writeHeader(f, o, index);
    await fsCall(fsp.rename(spare, path.join(o.dir, segmentName(index))), spare);
    await syncDir(o.dir);
    return { file: f, header };
  } catch (err) {
    await f.close().catch(() => undefined);
    await fsp.rm(spare, { force: true }).catch(() => undefined);
    throw err;
  }
}

export async function openSegmentFile(o: SegmentFileOptions, index: number, readOnly: boolean): Promise<DirectFile> {
  return open(path.join(o.dir, segmentName(index)), { engine: o.engine, alignment: 'strict', readOnly });
}

/** Block 0 of a segment: its header, or why it has none. */
export async function readHeader(f: DirectFile, blockSize: number): Promise<SegmentHeader | string> {
  const block = alignedBuffer(blockSize);
  const n = await f.read(block, 0);
  if (n < blockSize) return `short segment file (${f.size} bytes)`;
  return decodeSegmentHeader(block);
}

/** A segment read through an aligned window (direct reads). */
export class SegmentReader implements SegmentBytes {
  private window: Buffer = alignedBuffer(READ_WINDOW);
  private start = 0;
  private filled = 0;

  constructor(
    private readonly file: DirectFile,
    readonly size: number,
    private readonly blockSize: number,
  ) {}

  async bytes(offset: number, length: number): Promise<Uint8Array> {
    if (offset >= this.start && offset + length <= this.start + this.filled) {
      return this.window.subarray(offset - this.start, offset - this.start + length);
    }
    const start = offset - (offset % this.blockSize);
    const want = Math.min(this.size - start, Math.max(READ_WINDOW, roundUp(offset + length - start, this.blockSize)));
    if (want > this.window.byteLength) this.window = alignedBuffer(roundUp(want, READ_WINDOW));
    let filled = 0;
    while (filled < want) {
      const n = await this.file.read(this.window.subarray(filled, want), start + filled);
      if (n <= 0) break;
      filled += n;
    }
    this.start = start;
    this.filled = filled;
    if (offset + length > start + filled) {
      // Past the end of the file (a short segment): reads as zeros, which no frame checks out as.
      this.window.fill(0, filled, offset + length - start);
      this.filled = offset + length - start;
    }
    return this.window.subarray(offset - start, offset - start + length);
  }
}
