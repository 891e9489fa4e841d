// Reading a segment back: the chain of batches from its first data block,
// every frame checked (checksum under the segment's salt, sequence one more
// than the last, run unchanged unless a batch says it resumes), and where and
// why the chain stops. Open and replay both read through here; only what
// they do with the stop differs.
import {
  FLAG_CLOSE,
  FLAG_RESUME,
  FRAME_BYTES,
  KIND_RECORD,
  checkBatchFrame,
  frameCrc,
  pad8,
  readFrame,
  roundUp,
  type Frame,
} from './format';

/** Bytes of one segment, read through a window: a returned view is valid until the next call. */
export interface SegmentBytes {
  readonly size: number;
  bytes(offset: number, length: number): Promise<Uint8Array>;
}

export interface ChainStart {
  salt: number;
  blockSize: number;
  /** The sequence the first batch must start with; undefined: whatever it says. */
  expect?: number;
  /** Stop before a batch whose first sequence is above this (replay of a log being written). */
  stopAfter?: number;
}

export interface ChainEnd {
  /** Offset of the first batch not taken (block-aligned): where the next batch goes. */
  end: number;
  /** The sequence the next record gets. */
  next: number;
  /** Sequence of the segment's first record, if it has a batch. */
  first?: number;
  run?: number;
  batches: number;
  /** The last batch taken. */
  lastBatch?: Frame;
  /** The last batch taken was the empty batch close() writes. */
  closed: boolean;
  /** Why the chain stopped here: an unreadable or unexpected frame at `offset`; undefined when the segment is full or `stopAfter` was reached. */
  invalid?: { offset: number; reason: string };
}

export interface ScannedRecord {
  sequence: number;
  /** A view into the read window: copy it before the next step of the scan. */
  data: Uint8Array;
}

/**
 * Walks the segment's batches, yielding each record once its frame checks
 * out, and returns where the chain ends. A batch that breaks part-way was not
 * acknowledged as a whole (a batch is acknowledged only when all of its write
 * completed), so the chain ends at its start even if some of its records were
 * yielded.
 */
export async function* scanChain(src: SegmentBytes, start: ChainStart): AsyncGenerator<ScannedRecord, ChainEnd, void> {
  const { salt, blockSize } = start;
  const state: ChainEnd = { end: blockSize, next: start.expect ?? 0, batches: 0, closed: false };
  let expect = start.expect;
  let p = blockSize;
  const stop = (offset: number, reason: string): ChainEnd => ({ ...state, end: p, invalid: { offset, reason } });
  for (;;) {
    if (p + FRAME_BYTES > src.size) return { ...state, end: p };
    const head = await src.bytes(p, FRAME_BYTES);
    const check = checkBatchFrame(salt, head, 0, p, src.size);
    if (!check.frame) return stop(p, check.invalid!);
    const batch = check.frame;
    if (expect !== undefined && batch.sequence !== expect) {
      return stop(p, `batch starts at sequence ${batch.sequence}, expected ${expect}`);
    }
    if (state.run !== undefined && batch.run !== state.run && !(batch.flags & FLAG_RESUME)) {
      return stop(p, `batch of run ${batch.run} follows run ${state.run} without resuming`);
    }
    if (start.stopAfter !== undefined && batch.sequence > start.stopAfter) return { ...state, end: p };
    const batchEnd = p + FRAME_BYTES + batch.length;
    let q = p + FRAME_BYTES;
    let sequence = batch.sequence;
    while (q < batchEnd) {
      if (q + FRAME_BYTES > batchEnd) return stop(q, 'record frame crosses the end of its batch');
      const f = readFrame(await src.bytes(q, FRAME_BYTES), 0);
      if (f.kind !== KIND_RECORD) return stop(q, `frame kind ${f.kind} inside a batch`);
      if (q + FRAME_BYTES + pad8(f.length) > batchEnd) return stop(q, `record length ${f.length} runs past its batch`);
      if (f.sequence !== sequence) return stop(q, `record sequence ${f.sequence}, expected ${sequence}`);
      if (f.run !== batch.run) return stop(q, `record of run ${f.run} in a batch of run ${batch.run}`);
      const whole = await src.bytes(q, FRAME_BYTES + f.length);
      const data = whole.subarray(FRAME_BYTES, FRAME_BYTES + f.length);
      if (frameCrc(batch.run, whole, 0, data) !== f.crc) return stop(q, `record ${sequence}: checksum mismatch`);
      yield { sequence, data };
      sequence++;
      q += FRAME_BYTES + pad8(f.length);
    }
    state.first ??= batch.sequence;
    state.next = sequence;
    state.run = batch.run;
    state.batches++;
    state.lastBatch = batch;
    state.closed = (batch.flags & FLAG_CLOSE) !== 0;
    expect = sequence;
    p = roundUp(batchEnd, blockSize);
  }
}

/** Runs the chain to its end without keeping the records. */
export async function walkChain(src: SegmentBytes, start: ChainStart): Promise<{ end: ChainEnd; records: number }> {
  const it = scanChain(src, start);
  let records = 0;
  for (;;) {
    const step = await it.next();
    if (step.done) return { end: step.value, records };
    records++;
  }
}

export interface Evidence {
  offset: number;
  frame: Frame;
}

/**
 * Looks past the end of a chain for proof that it should have gone on: a
 * batch frame (valid under `salt`) made when `sequence` was already
 * acknowledged. Batches only start on block boundaries, so only those are
 * read. Frames left by an earlier run past its own torn tail say less than
 * that run's cut, and frames of another preparation of the file fail the
 * checksum, so neither is taken for proof.
 */
export async function findAcknowledgedAfter(
  src: SegmentBytes,
  salt: number,
  blockSize: number,
  from: number,
  sequence: number,
): Promise<Evidence | undefined> {
  for (let b = roundUp(from, blockSize); b + FRAME_BYTES <= src.size; b += blockSize) {
    const head = await src.bytes(b, FRAME_BYTES);
    const check = checkBatchFrame(salt, head, 0, b, src.size);
    if (check.frame && check.frame.durableThrough >= sequence) return { offset: b, frame: check.frame };
  }
  return undefined;
}
