// The log's on-disk format, as pure functions over bytes.
//
// A segment file: block 0 is the segment header; batches follow, each
// starting on a block boundary. A batch is one direct write:
//   [batch frame][record frame + data, padded to 8] … [zeros to the block end]
// Every frame is FRAME_BYTES long and carries a CRC32C. A batch frame's is
// seeded with the segment's random salt, so batches left in a recycled or
// re-prepared segment never check out under its new salt; a record frame's
// with the run that wrote it (a record is framed when append() is called,
// before the segment it lands in is known), so records left by another run
// never check out inside this run's batch.
//
// Frame (little-endian):
//   0 u32 crc32c of bytes 4..32 and the frame's data; a batch frame's is
//     seeded with the segment's salt, a record frame's with its run number
//   4 u32 length: record: data bytes; batch: bytes of the record frames after it
//   8 u64 sequence: record: its sequence; batch: the sequence of its first record
//  16 u64 durableThrough (batch): every sequence up to it was acknowledged when the batch was made
//  24 u32 run: a random number per openLog(); a run's first batch has FLAG_RESUME
//  28 u16 kind (KIND_BATCH, KIND_RECORD)
//  30 u16 flags (batch: FLAG_RESUME, FLAG_CLOSE)
import { UnsupportedError } from '../errors';

export const FRAME_BYTES = 32;
export const KIND_BATCH = 1;
export const KIND_RECORD = 2;
/** The first batch of a run (an openLog()): its run number may differ from the batch before it. */
export const FLAG_RESUME = 1;
/** The empty batch close() writes: everything before it was acknowledged. */
export const FLAG_CLOSE = 2;

export const SEGMENT_MAGIC = 'ODLOGSG1';
export const SEGMENT_VERSION = 1;
export const SEGMENT_HEADER_BYTES = 44;

type Crc32c = (input: Uint8Array, initial?: number) => number;
let crcImpl: Crc32c | undefined;

/** CRC32C from @node-rs/crc32 (SIMD, prebuilt per platform), loaded when a log is first used. */
export function crc32c(input: Uint8Array, initial = 0): number {
  if (!crcImpl) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      crcImpl = (require('@node-rs/crc32') as { crc32c: Crc32c }).crc32c;
    } catch (err) {
      throw new UnsupportedError('ERR_LOG_NO_CRC32C', `the log needs @node-rs/crc32 for CRC32C: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
  return crcImpl(input, initial) >>> 0;
}

export function pad8(n: number): number {
  return (n + 7) & ~7;
}

export function roundUp(n: number, block: number): number {
  return Math.ceil(n / block) * block;
}

/** Bytes a record of `length` data bytes takes in a batch. */
export function recordFrameBytes(length: number): number {
  return FRAME_BYTES + pad8(length);
}

function view(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

function setU64(dv: DataView, at: number, value: number): void {
  dv.setUint32(at, value % 0x1_0000_0000, true);
  dv.setUint32(at + 4, Math.floor(value / 0x1_0000_0000), true);
}

function getU64(dv: DataView, at: number): number {
  return dv.getUint32(at + 4, true) * 0x1_0000_0000 + dv.getUint32(at, true);
}

export interface Frame {
  crc: number;
  length: number;
  sequence: number;
  durableThrough: number;
  run: number;
  kind: number;
  flags: number;
}

/** Writes a frame's fields (not its CRC) at `at`. */
export function putFrame(buf: Uint8Array, at: number, f: Omit<Frame, 'crc'>): void {
  const dv = view(buf);
  dv.setUint32(at + 4, f.length, true);
  setU64(dv, at + 8, f.sequence);
  setU64(dv, at + 16, f.durableThrough);
  dv.setUint32(at + 24, f.run, true);
  dv.setUint16(at + 28, f.kind, true);
  dv.setUint16(at + 30, f.flags, true);
}

export function readFrame(buf: Uint8Array, at: number): Frame {
  const dv = view(buf);
  return {
    crc: dv.getUint32(at, true),
    length: dv.getUint32(at + 4, true),
    sequence: getU64(dv, at + 8),
    durableThrough: getU64(dv, at + 16),
    run: dv.getUint32(at + 24, true),
    kind: dv.getUint16(at + 28, true),
    flags: dv.getUint16(at + 30, true),
  };
}

/** The CRC of the frame at `at` with `data` (the record's bytes; none for a batch frame): seed is the salt (batch) or run (record). */
export function frameCrc(seed: number, buf: Uint8Array, at: number, data?: Uint8Array): number {
  const head = crc32c(buf.subarray(at + 4, at + FRAME_BYTES), seed);
  return data && data.byteLength > 0 ? crc32c(data, head) : head;
}

export function sealFrame(seed: number, buf: Uint8Array, at: number, data?: Uint8Array): void {
  view(buf).setUint32(at, frameCrc(seed, buf, at, data), true);
}

export interface SegmentHeader {
  version: number;
  blockSize: number;
  segmentSize: number;
  /** Random per preparation of the file: seeds every frame CRC in it. */
  salt: number;
  index: number;
}

export function encodeSegmentHeader(h: SegmentHeader, into: Uint8Array): void {
  into.fill(0, 0, SEGMENT_HEADER_BYTES);
  Buffer.from(into.buffer, into.byteOffset, 8).write(SEGMENT_MAGIC, 'latin1');
  const dv = view(into);
  dv.setUint32(8, h.version, true);
  dv.setUint32(12, h.blockSize, true);
  setU64(dv, 16, h.segmentSize);
  dv.setUint32(24, h.salt, true);
  setU64(dv, 28, h.index);
  dv.setUint32(40, crc32c(into.subarray(0, 40)), true);
}

/** The header, or why block 0 does not hold one. */
export function decodeSegmentHeader(buf: Uint8Array): SegmentHeader | string {
  if (buf.byteLength < SEGMENT_HEADER_BYTES) return 'too short for a segment header';
  if (Buffer.from(buf.buffer, buf.byteOffset, 8).toString('latin1') !== SEGMENT_MAGIC) return 'no segment magic';
  const dv = view(buf);
  if (dv.getUint32(40, true) !== crc32c(buf.subarray(0, 40))) return 'segment header checksum mismatch';
  const version = dv.getUint32(8, true);
  if (version !== SEGMENT_VERSION) return `segment format version ${version}, this odirect reads ${SEGMENT_VERSION}`;
  return {
    version,
    blockSize: dv.getUint32(12, true),
    segmentSize: getU64(dv, 16),
    salt: dv.getUint32(24, true),
    index: getU64(dv, 28),
  };
}

export interface BatchCheck {
  frame?: Frame;
  /** Why the bytes at this place are not the batch frame expected. */
  invalid?: string;
}

/**
 * Checks the batch frame at `at` of a segment: checksum under `salt`, kind,
 * and a length that stays inside the segment. Sequence and run rules are the
 * caller's (they depend on what came before).
 */
export function checkBatchFrame(salt: number, buf: Uint8Array, at: number, offset: number, segmentSize: number): BatchCheck {
  const f = readFrame(buf, at);
  if (f.crc !== frameCrc(salt, buf, at)) return { invalid: 'batch checksum mismatch' };
  if (f.kind !== KIND_BATCH) return { invalid: `frame kind ${f.kind} where a batch starts` };
  if (offset + FRAME_BYTES + f.length > segmentSize) return { invalid: `batch length ${f.length} runs past the segment end` };
  return { frame: f };
}
