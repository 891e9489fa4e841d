// The one door from the policies to the kernel. Both engines (thread pool,
// io_uring) implement it; results and errors are the same on both.
import type { EngineName } from '../types';

export interface Engine {
  readonly name: EngineName;
  /** pwritev2: bytes written (may be short), or rejects with the errno. */
  writev(fd: number, buffers: Uint8Array[], position: number, rwflags: number): Promise<number>;
  /** preadv2: bytes read (0 at end of file). */
  readv(fd: number, buffers: Uint8Array[], position: number, rwflags: number): Promise<number>;
  fsync(fd: number, dataOnly: boolean): Promise<void>;
  fallocate(fd: number, mode: number, offset: number, length: number): Promise<void>;
  ftruncate(fd: number, size: number): Promise<void>;
  syncFileRange(fd: number, offset: number, nbytes: number, flags: number): Promise<void>;
}
