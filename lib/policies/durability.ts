// Durability: which flags make a write durable, and what else it takes.
// RWF_DSYNC (or O_DSYNC) makes a direct write durable when it completes, and
// that is all it takes on ext4 (verify-atomic crash cycles: no acknowledged
// write lost in any run).
// XFS atomic writes are the exception, measured on 6.18.44 with the crash
// cycles of verify-atomic (atomic dsync writes to 64 KiB regions, shutdown
// ioctl without log flush, remount): 63 of 284,518 acknowledged writes were
// lost over 16 runs (both engines, RWF_DSYNC or RWF_SYNC, 1 to 8 writers),
// and each lost write we traced was the last one acknowledged before the
// shutdown: the write had completed before the log record of its CoW remap
// was stable. With a sync of the file after each such write, before it is
// acknowledged, 0 of 126,190 were lost. So on XFS a durable atomic write is
// followed by fdatasync; it costs one more log force per write.
import { C } from '../native';
import type { Capabilities } from '../types';

/** RWF flags for a write that must be durable when it completes. */
export function durableWriteFlags(): number {
  return C.RWF_DSYNC;
}

/** After a durable write completes: nothing more, or a sync of the file before it counts as done. */
export function syncAfterDurableWrite(caps: Capabilities, atomic: boolean): 'none' | 'datasync' {
  return atomic && caps.fsType === 'xfs' ? 'datasync' : 'none';
}
