// Overlapping software atomic writes (docs/xfs-atomic-overlap.md).
//
// XFS without a hardware atomic unit on its device writes RWF_ATOMIC out of
// place: the data goes to blocks staged in the CoW fork, and the write's
// completion (xfs_reflink_end_atomic_cow) remaps whatever CoW blocks cover its
// range into the file. Two such writes to one range in flight at once share
// those staged blocks, so a completion can map in blocks another write has
// not written yet, and free blocks a write still in flight is writing to (a
// perf trace of both is in the doc). Direct readers then see the region as zeros, or as
// stale data of blocks freed and reused, until the next write to it: on
// Linux 6.18, 4 writers and 4 readers on 4 regions of 64 KiB (XFS on a loop
// device, bench/ref/atomic_overlap.c) read 573 such regions in 27,766 reads
// over 20 s; with writes to one region ordered, 0 in 47,686. Through odirect
// with this policy, 0 in 76,990 reads over 60 s (the raw path in the same
// run: 12 zero and 1 stale in 56,599; verify-atomic). Overlapping
// atomic writes are then not atomic against each other, and a crash at the
// wrong moment could keep the mix. XFS developers have said as much: racing
// software atomic writes against each other "is not safe" (linux-xfs,
// 2025-07-28, "Re: [PATCH v3 05/13] generic/1226").
//
// So odirect never runs two overlapping atomic writes at the same time on a
// filesystem that may do them in software: such a write takes the range lock
// exclusively (FIFO: in issue order; writes that do not overlap never wait).
//
// Which filesystems: XFS whose atomic unit (statx) is larger than its device's
// hardware atomic unit, i.e. software (CoW) atomic writes are enabled. There
// every atomic write may go through CoW, also one the hardware could take:
// XFS tries the hardware path first and retries with CoW when the extent does
// not fit it (-ENOPROTOOPT in xfs_file_dio_write_atomic). ext4 and block
// devices write atomically in hardware only, in place, and are not affected.
import type { Capabilities } from '../types';

/** The filesystem may write RWF_ATOMIC out of place (CoW), so overlapping ones may not run together. */
export function hasSoftwareAtomicWrites(caps: Capabilities): boolean {
  if (!caps.atomic.supported || caps.fsType !== 'xfs') return false;
  const hardwareMax = caps.device?.atomicWriteUnitMax ?? 0;
  return caps.atomic.unitMax > hardwareMax;
}

/** Whether a direct write must hold its range exclusively: an atomic write where atomics may be software. */
export function atomicWriteNeedsExclusiveRange(caps: Capabilities, atomic: boolean): boolean {
  return atomic && hasSoftwareAtomicWrites(caps);
}
