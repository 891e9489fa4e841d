// pwritev2/preadv2 and friends on libuv's thread pool: works everywhere, one
// thread per I/O in flight (UV_THREADPOOL_SIZE bounds the depth).
import { isOwnedMemory } from '../aligned';
import { native } from '../native';
import { needsOwnedCopy } from '../policies/ownership';
import { readThroughCopy, writeThroughCopy } from './caller-memory';
import type { Engine } from './engine';

export class ThreadPoolEngine implements Engine {
  readonly name = 'threadpool' as const;

  writev(fd: number, buffers: Uint8Array[], position: number, rwflags: number): Promise<number> {
    if (needsOwnedCopy(buffers, isOwnedMemory)) return writeThroughCopy(buffers, (owned) => native.pwritev2(fd, owned, position, rwflags));
    return native.pwritev2(fd, buffers, position, rwflags);
  }

  readv(fd: number, buffers: Uint8Array[], position: number, rwflags: number): Promise<number> {
    if (needsOwnedCopy(buffers, isOwnedMemory)) return readThroughCopy(buffers, (owned) => native.preadv2(fd, owned, position, rwflags));
    return native.preadv2(fd, buffers, position, rwflags);
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
