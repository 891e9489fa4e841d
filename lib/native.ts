// The compiled addon, typed. node-gyp-build loads build/Release, or else the
// prebuild in prebuilds/ (prebuildify --napi --tag-libc); the package root is one
// level up from both lib/ (sources, under vitest) and dist/ (compiled).
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { OdirectError } from './errors';

export interface NativeStatx {
  mask: number;
  blksize: number;
  attributes: bigint;
  attributesMask: bigint;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  ino: number;
  size: number;
  blocks: number;
  rdevMajor: number;
  rdevMinor: number;
  devMajor: number;
  devMinor: number;
  mntId: number;
  dioMemAlign: number;
  dioOffsetAlign: number;
  dioReadOffsetAlign: number;
  atomicWriteUnitMin: number;
  atomicWriteUnitMax: number;
  atomicWriteUnitMaxOpt: number;
  atomicWriteSegmentsMax: number;
  dax: number;
  writeAtomic: number;
  /** Nanoseconds since the epoch; btimeNs only if mask has STATX_BTIME. */
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  btimeNs: bigint;
}

export interface NativeStatfs {
  type: number;
  bsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
}

export interface NativeBlockDevice {
  size: number;
  logicalBlockSize: number;
  physicalBlockSize: number;
}

type Offset = number | bigint;

export interface NativeBinding {
  open(path: string, flags: number, mode: number): Promise<number>;
  openSync(path: string, flags: number, mode: number): number;
  close(fd: number): Promise<number>;
  closeSync(fd: number): number;
  fsync(fd: number): Promise<number>;
  fsyncSync(fd: number): number;
  fdatasync(fd: number): Promise<number>;
  fdatasyncSync(fd: number): number;
  fallocate(fd: number, mode: number, offset: Offset, length: Offset): Promise<number>;
  fallocateSync(fd: number, mode: number, offset: Offset, length: Offset): number;
  ftruncate(fd: number, size: Offset): Promise<number>;
  ftruncateSync(fd: number, size: Offset): number;
  syncFileRange(fd: number, offset: Offset, nbytes: Offset, flags: number): Promise<number>;
  syncFileRangeSync(fd: number, offset: Offset, nbytes: Offset, flags: number): number;
  fadvise(fd: number, offset: Offset, length: Offset, advice: number): Promise<number>;
  fadviseSync(fd: number, offset: Offset, length: Offset, advice: number): number;
  /** Points fd at /dev/null, keeping the number taken (throws EBADF if it is not open). */
  fdToDevNull(fd: number): void;
  pwritev2(fd: number, buffers: ArrayBufferView[], position: Offset, flags: number): Promise<number>;
  pwritev2Sync(fd: number, buffers: ArrayBufferView[], position: Offset, flags: number): number;
  preadv2(fd: number, buffers: ArrayBufferView[], position: Offset, flags: number): Promise<number>;
  preadv2Sync(fd: number, buffers: ArrayBufferView[], position: Offset, flags: number): number;
  statx(target: string | number): Promise<NativeStatx>;
  statxSync(target: string | number): NativeStatx;
  statfs(path: string): Promise<NativeStatfs>;
  statfsSync(path: string): NativeStatfs;
  blockDevice(fd: number): Promise<NativeBlockDevice>;
  blockDeviceSync(fd: number): NativeBlockDevice;
  residentPages(fd: number, offset: Offset, length: Offset): Promise<number>;
  residentPagesSync(fd: number, offset: Offset, length: Offset): number;
  addressModulo(view: ArrayBufferView, alignment: number): number;
  /** Zero-filled external memory odirect owns (refcounted; see docs/memory.md), or undefined where external memory is refused. */
  allocOwned(size: number, alignment: number): ArrayBuffer | undefined;
  /** True when the view's bytes lie in a live odirect allocation. */
  isOwned(view: ArrayBufferView): boolean;
  /** Detaches an odirect-owned view's ArrayBuffer (false, and nothing done, for other memory). */
  detachOwned(view: ArrayBufferView): boolean;
  /** Live odirect allocations (blocks and registered slots) in this process. */
  ownedBlocks(): number;
  /** errno of a test io_uring_setup (0: works) and the needed opcodes its probe lacks. */
  uringSupport(): { errno: number; missing: string[] };
  /**
   * Sets up this thread's ring. Each batch of completions is written to the
   * first `count` entries of completedIds/completedResults, then onComplete(count)
   * is called. Ids are from 1 to cqEntries, each on the ring at most once.
   */
  uringInit(
    entries: number,
    onComplete: (count: number) => void,
    deferTaskrun: boolean,
  ): { sqEntries: number; cqEntries: number; features: number; ftruncate: boolean; completedIds: Uint32Array; completedResults: Int32Array };
  /** Allocates and registers fixed buffer 0 of this thread's ring. */
  uringRegisterArena(bytes: number): void;
  /** A slot of the registered region as its own ArrayBuffer (whole pages), or undefined when full. */
  uringArenaAcquire(size: number): ArrayBuffer | undefined;
  /** Turns SQEs still queued into NOPs; returns their ids. */
  uringCancelQueued(): number[];
  /** fixed: WRITE_FIXED on the registered region; fixedFile: `fd` is a slot of the fixed-file table. */
  uringPrepWritev(fd: number, buffers: ArrayBufferView[], position: Offset, flags: number, id: number, fixed: boolean, fixedFile: boolean): boolean;
  uringPrepReadv(fd: number, buffers: ArrayBufferView[], position: Offset, flags: number, id: number, fixed: boolean, fixedFile: boolean): boolean;
  /** Puts fd in this thread's fixed-file table: its slot, or -1 (table full or missing). */
  uringRegisterFile(fd: number): number;
  /** Points a slot at another fd. */
  uringReplaceFile(slot: number, fd: number): void;
  /** Empties a slot (before its fd is closed). */
  uringUnregisterFile(slot: number): void;
  /** Empties every slot (an interrupt path that points fds at /dev/null). */
  uringUnregisterAllFiles(): void;
  uringPrepFsync(fd: number, dataOnly: boolean, id: number): boolean;
  uringPrepFallocate(fd: number, mode: number, offset: Offset, length: Offset, id: number): boolean;
  uringPrepFtruncate(fd: number, size: Offset, id: number): boolean;
  /** IORING_OP_ASYNC_CANCEL of the request with user_data `target`. */
  uringPrepCancel(target: number, id: number): boolean;
  uringPrepSyncFileRange(fd: number, offset: Offset, nbytes: number, flags: number, id: number): boolean;
  /** Submits what is queued; returns how many SQEs the kernel left queued. */
  uringSubmit(): number;
  errnoError(errno: number, syscall: string): Error;
  readonly pageSize: number;
  readonly constants: Readonly<Record<NativeConstant, number>>;
}

export type NativeConstant =
  | 'O_RDONLY' | 'O_WRONLY' | 'O_RDWR' | 'O_CREAT' | 'O_EXCL' | 'O_TRUNC' | 'O_DIRECT' | 'O_DSYNC'
  | 'O_SYNC' | 'O_APPEND' | 'O_NOFOLLOW' | 'O_DIRECTORY'
  | 'RWF_HIPRI' | 'RWF_DSYNC' | 'RWF_SYNC' | 'RWF_NOWAIT' | 'RWF_APPEND' | 'RWF_NOAPPEND'
  | 'RWF_ATOMIC' | 'RWF_DONTCACHE'
  | 'FALLOC_FL_KEEP_SIZE' | 'FALLOC_FL_PUNCH_HOLE' | 'FALLOC_FL_ZERO_RANGE'
  | 'SYNC_FILE_RANGE_WAIT_BEFORE' | 'SYNC_FILE_RANGE_WRITE' | 'SYNC_FILE_RANGE_WAIT_AFTER'
  | 'POSIX_FADV_NORMAL' | 'POSIX_FADV_SEQUENTIAL' | 'POSIX_FADV_RANDOM' | 'POSIX_FADV_WILLNEED'
  | 'POSIX_FADV_DONTNEED'
  | 'STATX_ATTR_DAX' | 'STATX_ATTR_WRITE_ATOMIC' | 'STATX_DIOALIGN' | 'STATX_WRITE_ATOMIC'
  | 'STATX_DIO_READ_ALIGN';

const requireHere = createRequire(__filename);
const loadBinding = requireHere('node-gyp-build') as (dir: string) => unknown;

/** node-gyp-build, with what to do when there is neither a matching prebuild nor a build. */
function loadAddon(root: string): NativeBinding {
  try {
    return loadBinding(root) as NativeBinding;
  } catch (err) {
    if (!(err instanceof Error) || !err.message.startsWith('No native build was found')) throw err;
    throw new OdirectError(
      'ERR_NATIVE_ADDON_MISSING',
      `${err.message.trim()}\n` +
        'odirect ships prebuilds for linux-x64 with glibc >= 2.28; elsewhere its install script builds the addon ' +
        '(needs a C/C++ toolchain, make and python3). If npm skipped that script (npm 11 asks first: ' +
        '`npm install-scripts approve odirect`), run `npm rebuild odirect`.',
      { cause: err },
    );
  }
}

// ODIRECT_ADDON_PATH loads a given build instead (scripts/asan.sh: the sanitizer build in build-asan/).
const addonPath = process.env.ODIRECT_ADDON_PATH;
export const native = (addonPath ? requireHere(path.resolve(addonPath)) : loadAddon(path.join(__dirname, '..'))) as NativeBinding;
export const C = native.constants;
