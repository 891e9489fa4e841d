// Reading a file back as the kernel has it, without the DirectFile under test: O_DIRECT on a
// fresh fd through the raw binding, so no cache of ours is involved. On a filesystem without
// direct I/O the O_DIRECT flag is silently ignored.
import { alignedBuffer } from '../../lib/aligned';
import { C, native } from '../../lib/native';

const PAGE = 4096;

/**
 * Up to `length` bytes at `position` (fewer at end of file). Callers keep reads inside the
 * block that holds EOF: on XFS a direct read reaching further can fail with EIO after atomic
 * and buffered writes (docs/kernel-facts.md §9).
 */
export function readDirect(file: string, position: number, length: number): Buffer {
  const fd = native.openSync(file, C.O_RDONLY | C.O_DIRECT, 0);
  try {
    // Whole pages, so every piece keeps O_DIRECT's alignment; the result is cut to `length`.
    const into = alignedBuffer(Math.max(PAGE, Math.ceil(length / PAGE) * PAGE));
    let done = 0;
    // Bounded: a 1 GiB read in 1 MiB pieces at worst.
    for (let i = 0; i < 1024 && done < length; i++) {
      const n = native.preadv2Sync(fd, [into.subarray(done, Math.min(into.byteLength, done + (1 << 20)))], position + done, 0);
      if (n <= 0) break;
      done += n;
    }
    return into.subarray(0, Math.min(done, length));
  } finally {
    native.closeSync(fd);
  }
}

/** The whole file (its statx size), read up to the end of the block that holds EOF. */
export function readBackDirect(file: string, size = native.statxSync(file).size): Buffer {
  const back = readDirect(file, 0, Math.ceil(size / PAGE) * PAGE);
  if (back.byteLength < size) throw new Error(`readBackDirect(${file}): read ${back.byteLength} of ${size} bytes`);
  return back.subarray(0, size);
}
