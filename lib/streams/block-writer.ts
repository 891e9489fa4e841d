// Sequential writing in aligned blocks, for the write stream, writeFile and
// replaceFile. Bytes of any size and alignment are copied into aligned
// staging buffers of `chunk` bytes; each full one is written direct at an
// aligned offset and owns its buffer until that write settles. Up to
// `writeBehind` writes are in flight; write() waits for one to finish past that.
//
// Writes that end past the file's size are serialised by DirectFile (as the
// kernel orders extending direct writes), so the file is grown ahead of the
// writes with allocate() (fallocate mode 0): the blocks are reserved and the
// writes inside the size run side by side. finish() cuts the file back to
// exactly the bytes written.
//
// The last partial block is written padded with zeros to a whole block, still
// direct, and then the file is truncated to the exact size: no page of it ever
// enters the page cache (a buffered tail would, and would need writing back
// and dropping), at the cost of one ftruncate. Where the padding would cover
// bytes of the file that are kept (flags 'r+', writing inside an existing
// file) the tail goes to DirectFile.write unpadded, which reads and rewrites
// the partial block.
import { alignedBuffer } from '../aligned';
import type { DirectFile } from '../file';
import { native } from '../native';
import { alignDown, alignUp } from './options';

export interface BlockWriterOptions {
  /** Where the first byte goes. */
  start: number;
  /** Bytes per write (rounded up to the alignment). */
  chunk: number;
  writeBehind: number;
  /** The final size, if known: allocated at once. */
  size?: number;
  preallocate: boolean;
  /** Each write durable when it completes (RWF_DSYNC). */
  dsync: boolean;
  /** fdatasync in finish(), so everything is durable when it resolves. */
  flush: boolean;
  /** Called once, when a write in flight fails (the stream errors at once, not at its next write). */
  onError?: (err: unknown) => void;
}

/** Bytes the file is grown by at a time, ahead of the writes, when the final size is not known. */
const MIN_PREALLOCATE_STEP = 32 * 1024 * 1024;

export class BlockWriter {
  readonly file: DirectFile;
  private readonly align: number;
  private readonly chunk: number;
  private readonly opts: BlockWriterOptions;
  /** File size when writing began: bytes below it that we do not write are kept. */
  private readonly originalSize: number;
  private readonly inFlight = new Set<Promise<void>>();
  /** Staging buffers whose writes have settled, for reuse: no fresh 1 MiB allocation (and page faults) per block. */
  private readonly spare: Buffer[] = [];
  private stage: Buffer | undefined;
  /** Where the stage's first byte goes, how many bytes it holds and how many it can hold. */
  private stagePos: number;
  private fill = 0;
  private capacity: number;
  /** The file's size as grown ahead by allocate(); writes ending at or below it do not extend it. */
  private allocatedEnd: number;
  private preallocate: boolean;
  private failed: { error: unknown } | undefined;
  private accepted = 0;
  /** Bytes whose writes have completed. */
  bytesWritten = 0;
  /** Writes issued (each one aligned block run, or the tail). */
  writesIssued = 0;

  constructor(file: DirectFile, opts: BlockWriterOptions) {
    this.file = file;
    this.opts = opts;
    // Direct writes need offsets and lengths at offsetAlign; the buffered
    // fallback works in pages. 4096 covers both on every device we know.
    this.align = Math.max(4096, file.direct ? file.capabilities.direct.offsetAlign : 0);
    this.chunk = alignUp(opts.chunk, this.align);
    this.originalSize = file.size;
    this.allocatedEnd = file.size;
    this.preallocate = opts.preallocate;
    this.stagePos = opts.start;
    // An unaligned start: the first stage runs to the next aligned offset, so all later ones are aligned.
    const head = alignUp(opts.start, this.align) - opts.start;
    this.capacity = head > 0 ? head : this.chunk;
  }

  get inFlightCount(): number {
    return this.inFlight.size;
  }

  /** Reserves the final size at once, when it is known. ENOSPC here means it will not fit. */
  async begin(): Promise<void> {
    const size = this.opts.size;
    if (!this.preallocate || size === undefined || size === 0) return;
    const end = alignUp(this.opts.start + size, this.align);
    if (end > this.allocatedEnd) {
      await this.file.allocate(this.allocatedEnd, end - this.allocatedEnd);
      this.allocatedEnd = end;
    }
  }

  /** Takes `data` (copied: the caller may reuse it when this resolves). Waits while `writeBehind` writes are in flight. */
  async write(data: Uint8Array): Promise<void> {
    this.throwIfFailed();
    let offset = 0;
    while (offset < data.byteLength) {
      this.stage ??= this.spare.pop() ?? alignedBuffer(this.chunk, this.align);
      const n = Math.min(this.capacity - this.fill, data.byteLength - offset);
      this.stage.set(data.subarray(offset, offset + n), this.fill);
      this.fill += n;
      offset += n;
      this.accepted += n;
      if (this.fill === this.capacity) await this.issueStage();
    }
  }

  /** Writes what is staged, waits for every write, sets the exact size, syncs if asked. */
  async finish(): Promise<void> {
    await this.settle();
    this.throwIfFailed();
    const end = this.opts.start + this.accepted;
    if (this.fill > 0) {
      const stage = this.stage!;
      const tailEnd = this.stagePos + this.fill;
      // Padding is safe when nothing after the tail in its block is data to keep.
      const padded = this.stagePos % this.align === 0 && tailEnd >= this.originalSize;
      const length = padded ? alignUp(this.fill, this.align) : this.fill;
      stage.fill(0, this.fill, length);
      this.stage = undefined;
      await this.issue(stage, length, this.stagePos, this.fill);
      this.fill = 0;
      await this.settle();
      this.throwIfFailed();
    }
    const finalSize = this.accepted === 0 ? this.originalSize : Math.max(this.originalSize, end);
    if (this.file.size !== finalSize) {
      await this.file.truncate(finalSize);
      // Cutting the size inside a block zeroes the rest of that block through
      // the page cache (XFS: iomap_zero_range; ext4 data=journal likewise), which
      // leaves that page cached and dirty: write it back and drop it.
      const page = native.pageSize;
      if (finalSize % page !== 0) await this.file.dropCache(alignDown(finalSize, page), page);
    }
    if (this.opts.dsync || this.opts.flush) await this.file.sync({ dataOnly: true });
    // Buffered fallback: RWF_DONTCACHE pages leave the cache only once written
    // back, which a write without dsync does not wait for; drop what is left.
    if (!this.file.direct && this.accepted > 0) await this.file.dropCache(alignDown(this.opts.start, native.pageSize), 0);
  }

  /** Waits until no write is in flight (errors are kept, not thrown). */
  async settle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all(this.inFlight);
  }

  private throwIfFailed(): void {
    if (this.failed) throw this.failed.error;
  }

  private async issueStage(): Promise<void> {
    const stage = this.stage!;
    const position = this.stagePos;
    const length = this.fill;
    this.stage = undefined;
    this.stagePos += length;
    this.fill = 0;
    this.capacity = this.chunk;
    await this.issue(stage, length, position, length);
  }

  /** Starts one write of the first `length` bytes of `stage` at `position` (`counted` of them are data, the rest padding). */
  private async issue(stage: Buffer, length: number, position: number, counted: number): Promise<void> {
    const block = stage.subarray(0, length);
    while (this.inFlight.size >= this.opts.writeBehind) await Promise.race(this.inFlight);
    this.throwIfFailed();
    // An unaligned write (the head up to the first block boundary, after an
    // unaligned start or append) is at most one block and is not grown ahead
    // of: a handle that refuses it (alignment 'strict') then fails before the
    // file changed at all.
    if (position % this.align === 0) await this.growAhead(position + block.byteLength);
    const options = this.file.direct ? { dsync: this.opts.dsync } : { dsync: this.opts.dsync, cache: 'dontcache' as const };
    this.writesIssued++;
    // The promise holds `block` until the write settles: nothing else reuses it.
    const done: Promise<void> = this.file.write(block, position, options).then(
      () => {
        this.bytesWritten += counted;
      },
      (error: unknown) => {
        if (this.failed) return;
        this.failed = { error };
        this.opts.onError?.(error);
      },
    );
    const tracked = done.finally(() => {
      this.inFlight.delete(tracked);
      // Settled: the kernel is done with it. A whole stage goes back for the next block.
      if (stage.byteLength === this.chunk && this.spare.length <= this.opts.writeBehind) this.spare.push(stage);
    });
    this.inFlight.add(tracked);
  }

  /** Grows the file ahead of a write that would end past it, so writes do not serialise on extending it. */
  private async growAhead(end: number): Promise<void> {
    if (!this.preallocate || end <= this.allocatedEnd) return;
    const step = Math.max(MIN_PREALLOCATE_STEP, this.chunk * this.opts.writeBehind * 2);
    const target = alignUp(end + step, this.align);
    const from = Math.max(this.allocatedEnd, alignDown(this.file.size, this.align));
    try {
      if (target > from) await this.file.allocate(from, target - from);
      this.allocatedEnd = target;
    } catch (err) {
      // Growing ahead is an optimisation: where it fails (no space for the
      // whole step, no fallocate here) writes extend the file one at a time,
      // and a write that really does not fit fails with its own error.
      const code = (err as { code?: string }).code;
      if (code !== 'ENOSPC' && code !== 'EOPNOTSUPP' && code !== 'EDQUOT') throw err;
      this.preallocate = false;
    }
  }
}
