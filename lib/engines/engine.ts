// The one door from the policies to the kernel. Both engines (thread pool,
// io_uring) implement it; results and errors are the same on both.
import type { EngineName } from '../types';

/** How a started read or write reports back: exactly one of the two, once. */
export interface Completion {
  complete(result: number): void;
  fail(error: unknown): void;
}

/** A Completion that settles a promise: what writev/readv return. */
export class PromiseCompletion implements Completion {
  readonly promise: Promise<number>;
  complete!: (result: number) => void;
  fail!: (error: unknown) => void;
  constructor() {
    this.promise = new Promise<number>((resolve, reject) => {
      this.complete = resolve;
      this.fail = reject;
    });
  }
}

export interface Engine {
  readonly name: EngineName;
  /**
   * pwritev2: bytes written (may be short), or rejects with the errno. `signal`:
   * aborted before, nothing is issued; after, what can be cancelled is
   * (docs/api-habits.md), and the buffers stay held until the kernel is done.
   */
  writev(fd: number, buffers: Uint8Array[], position: number, rwflags: number, signal?: AbortSignal): Promise<number>;
  /** preadv2: bytes read (0 at end of file). */
  readv(fd: number, buffers: Uint8Array[], position: number, rwflags: number, signal?: AbortSignal): Promise<number>;
  /** writev, reporting to `done` instead of a promise: the fast paths' form (one promise per call, the caller's). */
  startWritev(fd: number, buffers: Uint8Array[], position: number, rwflags: number, signal: AbortSignal | undefined, done: Completion): void;
  startReadv(fd: number, buffers: Uint8Array[], position: number, rwflags: number, signal: AbortSignal | undefined, done: Completion): void;
  fsync(fd: number, dataOnly: boolean): Promise<void>;
  fallocate(fd: number, mode: number, offset: number, length: number): Promise<void>;
  ftruncate(fd: number, size: number): Promise<void>;
  syncFileRange(fd: number, offset: number, nbytes: number, flags: number): Promise<void>;
  /** Optional: a fixed-file table (io_uring). Register after open; unregister before close. */
  registerFile?(fd: number): void;
  unregisterFile?(fd: number): void;
}
