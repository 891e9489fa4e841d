// pwritev2/preadv2 and friends on libuv's thread pool: works everywhere, one
// thread per I/O in flight (UV_THREADPOOL_SIZE bounds the depth).
import { isOwnedMemory } from '../aligned';
import { native } from '../native';
import { needsOwnedCopy } from '../policies/ownership';
import { readThroughCopy, writeThroughCopy } from './caller-memory';
import type { Completion, Engine } from './engine';
import { AbortError } from '../habits';

/** A read or write whose caller's AbortSignal fired before it was issued is never issued (one in flight cannot be stopped). */
function abortedBefore(syscall: string, signal: AbortSignal | undefined): Promise<never> | undefined {
  return signal?.aborted ? Promise.reject(new AbortError(syscall, signal.reason)) : undefined;
}

export class ThreadPoolEngine implements Engine {
  readonly name = 'threadpool' as const;

  writev(fd: number, buffers: Uint8Array[], position: number, rwflags: number, signal?: AbortSignal): Promise<number> {
    const aborted = abortedBefore('pwritev2', signal);
    if (aborted) return aborted;
    if (needsOwnedCopy(buffers, isOwnedMemory)) return writeThroughCopy(buffers, (owned) => native.pwritev2(fd, owned, position, rwflags));
    return native.pwritev2(fd, buffers, position, rwflags);
  }

  readv(fd: number, buffers: Uint8Array[], position: number, rwflags: number, signal?: AbortSignal): Promise<number> {
    const aborted = abortedBefore('preadv2', signal);
    if (aborted) return aborted;
    if (needsOwnedCopy(buffers, isOwnedMemory)) return readThroughCopy(buffers, (owned) => native.preadv2(fd, owned, position, rwflags));
    return native.preadv2(fd, buffers, position, rwflags);
  }

  startWritev(fd: number, buffers: Uint8Array[], position: number, rwflags: number, signal: AbortSignal | undefined, done: Completion): void {
    this.writev(fd, buffers, position, rwflags, signal).then(
      (n) => done.complete(n),
      (err: unknown) => done.fail(err),
    );
  }

  startReadv(fd: number, buffers: Uint8Array[], position: number, rwflags: number, signal: AbortSignal | undefined, done: Completion): void {
    this.readv(fd, buffers, position, rwflags, signal).then(
      (n) => done.complete(n),
      (err: unknown) => done.fail(err),
    );
  }

  async fsync(fd: number, dataOnly: boolean): Promise<void> {
    await (dataOnly ? native.fdatasync(fd) : native.fsync(fd));
  }

  async fallocate(fd: number, mode: number, offset: number, length: number): Promise<void> {
    await native.fallocate(fd, mode, offset, length);
  }

  async ftruncate(fd: number, size: number): Promise<void> {
    await native.ftruncate(fd, size);
  }

  async syncFileRange(fd: number, offset: number, nbytes: number, flags: number): Promise<void> {
    await native.syncFileRange(fd, offset, nbytes, flags);
  }
}

export const threadPoolEngine = new ThreadPoolEngine();
