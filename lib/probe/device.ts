// The block device's queue limits from sysfs (/sys/dev/block/MAJ:MIN): the
// same values the kernel uses to validate direct and atomic I/O.
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import * as path from 'node:path';

export interface DeviceInfo {
  /** Kernel name, e.g. "loop3", "nvme0n1p2". */
  name: string;
  /** Size in bytes. */
  size: number;
  logicalBlockSize: number;
  physicalBlockSize: number;
  /** "write back" (volatile cache: flushes needed for durability) or "write through". */
  writeCache: string;
  /** The device honours Force Unit Access, so RWF_DSYNC writes need no separate flush. */
  fua: boolean;
  rotational: boolean;
  atomicWriteUnitMin: number;
  atomicWriteUnitMax: number;
  atomicWriteMax: number;
  atomicWriteBoundary: number;
}

function readSys(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return undefined;
  }
}

function readNumber(file: string): number {
  const text = readSys(file);
  const value = text === undefined ? NaN : Number(text);
  return Number.isFinite(value) ? value : 0;
}

/** Limits of block device major:minor, or undefined when it has no sysfs entry (tmpfs, NFS, …). */
export function deviceInfo(major: number, minor: number): DeviceInfo | undefined {
  const link = `/sys/dev/block/${major}:${minor}`;
  if (major === 0 || !existsSync(link)) return undefined;
  const dir = realpathSync(link);
  // A partition has no queue/ of its own; its disk's queue applies.
  const queue = existsSync(path.join(dir, 'queue')) ? path.join(dir, 'queue') : path.join(dir, '..', 'queue');
  return {
    name: path.basename(dir),
    size: readNumber(path.join(dir, 'size')) * 512, // sysfs counts 512-byte sectors
    logicalBlockSize: readNumber(path.join(queue, 'logical_block_size')),
    physicalBlockSize: readNumber(path.join(queue, 'physical_block_size')),
    writeCache: readSys(path.join(queue, 'write_cache')) ?? 'unknown',
    fua: readNumber(path.join(queue, 'fua')) === 1,
    rotational: readNumber(path.join(queue, 'rotational')) === 1,
    atomicWriteUnitMin: readNumber(path.join(queue, 'atomic_write_unit_min_bytes')),
    atomicWriteUnitMax: readNumber(path.join(queue, 'atomic_write_unit_max_bytes')),
    atomicWriteMax: readNumber(path.join(queue, 'atomic_write_max_bytes')),
    atomicWriteBoundary: readNumber(path.join(queue, 'atomic_write_boundary_bytes')),
  };
}
