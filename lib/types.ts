// The public types: what probe() reports and what open()/write() take and give.
import type { DeviceInfo } from './probe/device';

export type { DeviceInfo };

export interface DirectIoCapabilities {
  /** Direct I/O really bypasses the page cache here. */
  supported: boolean;
  /** Required alignment of buffer addresses (statx dio_mem_align). */
  memAlign: number;
  /** Required alignment of write offsets and lengths (statx dio_offset_align). */
  offsetAlign: number;
  /** Required alignment of read offsets and lengths (statx dio_read_offset_align, else offsetAlign). */
  readOffsetAlign: number;
  /** Why direct I/O is unsupported, or where the alignments came from if not statx. */
  reason?: string;
}

export interface AtomicCapabilities {
  /** RWF_ATOMIC direct writes are accepted (statx STATX_ATTR_WRITE_ATOMIC with a non-zero unit). */
  supported: boolean;
  unitMin: number;
  unitMax: number;
  /** Writes larger than this may be much slower (software fallback); 0: no such boundary. */
  unitMaxOpt: number;
  segmentsMax: number;
  reason?: string;
}

export interface Capabilities {
  path: string;
  /** 'file', 'directory' (probed through a scratch file inside it) or 'blockDevice'. */
  kind: 'file' | 'directory' | 'blockDevice';
  /** Filesystem type from mountinfo ('xfs', 'ext4', 'tmpfs', …), or 'block' for a block device. */
  fsType: string;
  /** Size in bytes (files and block devices). */
  size: number;
  direct: DirectIoCapabilities;
  atomic: AtomicCapabilities;
  /** RWF_DONTCACHE accepted (found by trying it, not from the kernel version). */
  dontcache: boolean;
  ioUring: { available: boolean; reason?: string };
  /** STATX_ATTR_DAX: loads and stores go straight to persistent memory; not direct I/O. */
  dax: boolean;
  device?: DeviceInfo;
}

export type EngineName = 'uring' | 'threadpool';
export type AlignmentMode = 'bounce' | 'strict';
export type FallbackMode = 'buffered' | 'error';
export type CacheMode = 'default' | 'dontcache' | 'writethrough';

export interface OpenOptions {
  /** Create the file if missing (O_CREAT). Default false. */
  create?: boolean;
  /** Fail if it exists (O_EXCL, with create). */
  exclusive?: boolean;
  /** Truncate to 0 on open (O_TRUNC). */
  truncate?: boolean;
  readOnly?: boolean;
  /** Open with O_DIRECT. Default true. */
  direct?: boolean;
  /** Every write is durable when it completes (O_DSYNC): data and the metadata to read it back. */
  dsync?: boolean;
  /** File mode for create. Default 0o644. */
  mode?: number;
  engine?: 'auto' | EngineName;
  /**
   * io_uring submission-queue size (1–4096, rounded up to a power of two by the kernel;
   * default 256). The ring is per thread and shared by every file on it: the first
   * open on the thread that uses io_uring decides; later values are ignored.
   */
  queueDepth?: number;
  /** Aborts the open: aborted before, nothing is opened; aborted meanwhile, the fd is closed and open rejects. */
  signal?: AbortSignal;
  alignment?: AlignmentMode;
  fallback?: FallbackMode;
}

export interface WriteOptions {
  /** All-or-nothing write with RWF_ATOMIC (direct I/O only). */
  atomic?: boolean;
  /** How the page cache is used; 'dontcache' and 'writethrough' write buffered. */
  cache?: CacheMode;
  /** This write is durable when it completes (RWF_DSYNC). */
  dsync?: boolean;
  /** Aborts the write (docs/api-habits.md says what the file holds then). */
  signal?: AbortSignal;
}

export interface WriteResult {
  bytesWritten: number;
  /** 'direct' when the data went around the page cache, 'buffered' when through it. */
  path: 'direct' | 'buffered';
}

export interface FileStats {
  /** Writes completed with direct I/O. */
  direct: number;
  /** Writes that went through the page cache because a cache mode asked for it. */
  buffered: number;
  /** Direct writes finished through the page cache (short write, no direct I/O). */
  bufferedFallback: number;
  /** Writes or reads copied through an aligned bounce buffer. */
  bounced: number;
  /** Writes that read and rewrote partial blocks at their head or tail. */
  readModifyWrite: number;
  atomic: number;
  reads: number;
  bytesWritten: number;
  bytesRead: number;
  syncs: number;
}
