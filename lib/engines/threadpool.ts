// pwritev2/preadv2 and friends on libuv's thread pool: works everywhere, one
// thread per I/O in flight (UV_THREADPOOL_SIZE bounds the depth).
import { native } from '../native';
import type { Engine } from './engine';

export class ThreadPoolEngine implements Engine {
  readonly name = 'threadpool' as const;

  writev(fd: number, buffers: Uint8Array[], position: number, rwflags: number): Promise<number> {
    return native.pwritev2(fd, buffers, position, rwflags);
  }

  readv(fd: number, buffers: Uint8Array[], position: number, rwflags: number): Promise<number> {
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
