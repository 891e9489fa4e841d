// Reads through the page cache that leave nothing in it, for files without
// direct I/O (ext4 data=journal; tmpfs, where the cache is the file). Its own
// fd with POSIX_FADV_RANDOM: readahead off for this open file, so the pages a
// read brings in are only those it returns (asynchronous readahead would
// otherwise keep filling pages after each read returned, and DONTNEED skips
// pages still under I/O). After each read its pages, clean and unlocked by
// then, are dropped with POSIX_FADV_DONTNEED.
import { withContext } from '../errors';
import { threadPoolEngine } from '../engines/threadpool';
import { C, native } from '../native';

export class UncachedReader {
  private constructor(
    private readonly path: string,
    private readonly fd: number,
  ) {}

  static async open(path: string): Promise<UncachedReader> {
    const fd = await native.open(path, C.O_RDONLY, 0).catch((err: unknown) => {
      throw withContext(err, { path });
    });
    try {
      await native.fadvise(fd, 0, 0, C.POSIX_FADV_RANDOM);
    } catch (err) {
      await native.close(fd).catch(() => undefined);
      throw withContext(err, { path });
    }
    return new UncachedReader(path, fd);
  }

  /** Reads into `into` at `position` (bytes read, fewer at EOF), then drops those pages. */
  async read(into: Uint8Array, position: number): Promise<number> {
    try {
      // Through the engine: caller memory is copied through odirect's own (docs/memory.md).
      const n = await threadPoolEngine.readv(this.fd, [into], position, 0);
      if (n > 0) {
        const page = native.pageSize;
        const start = position - (position % page);
        const end = Math.ceil((position + n) / page) * page;
        await native.fadvise(this.fd, start, end - start, C.POSIX_FADV_DONTNEED);
      }
      return n;
    } catch (err) {
      throw withContext(err, { path: this.path, position, length: into.byteLength });
    }
  }

  close(): Promise<number> {
    return native.close(this.fd);
  }
}
