// probe(path): what this file, directory or block device can do, asked of the
// kernel (statx, sysfs, ioctls) and, where only trying tells, by trying on a
// scratch file (RWF_DONTCACHE, O_DIRECT).
import { randomBytes } from 'node:crypto';
import { unlink } from 'node:fs/promises';
import * as path from 'node:path';
import { alignedBuffer } from '../aligned';
import { OdirectError, withContext } from '../errors';
import { C, native, type NativeStatx } from '../native';
import type { AtomicCapabilities, Capabilities, DirectIoCapabilities } from '../types';
import { checkPath } from '../validate';
import { deviceInfo, type DeviceInfo } from './device';
import { mountById } from './mountinfo';
import { uringAvailability } from './uring';

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFBLK = 0o060000;

type Kind = Capabilities['kind'];

/**
 * RWF_DONTCACHE support, found once per mount. Keyed by mount ID and device:
 * mount IDs are reused after an unmount, a reused one on another device must not match.
 */
const dontcacheByMount = new Map<string, boolean>();

function kindOf(st: NativeStatx, target: string): Kind {
  switch (st.mode & S_IFMT) {
    case S_IFREG:
      return 'file';
    case S_IFDIR:
      return 'directory';
    case S_IFBLK:
      return 'blockDevice';
    default:
      throw new OdirectError('ERR_UNSUPPORTED_FILE_TYPE', `${target} is not a regular file, directory or block device`, {
        path: target,
      });
  }
}

/** Direct-I/O rules: statx STATX_DIOALIGN first, the device's logical block size after (as Seastar does). */
export function directCapabilities(
  st: NativeStatx,
  fsType: string,
  device: DeviceInfo | undefined,
  openDirectError?: string,
): DirectIoCapabilities {
  const none = { supported: false, memAlign: 0, offsetAlign: 0, readOffsetAlign: 0 };
  if (openDirectError) return { ...none, reason: `open with O_DIRECT failed with ${openDirectError}` };
  if (st.mask & C.STATX_DIOALIGN) {
    if (st.dioOffsetAlign === 0 || st.dioMemAlign === 0) {
      return {
        ...none,
        reason: `${fsType} reports direct-I/O alignment 0 (statx): O_DIRECT would be silently buffered here (e.g. ext4 data=journal, inline data, verity)`,
      };
    }
    const readOffsetAlign =
      st.mask & C.STATX_DIO_READ_ALIGN && st.dioReadOffsetAlign > 0 ? st.dioReadOffsetAlign : st.dioOffsetAlign;
    return { supported: true, memAlign: st.dioMemAlign, offsetAlign: st.dioOffsetAlign, readOffsetAlign };
  }
  if (fsType === 'tmpfs' || fsType === 'ramfs') {
    return { ...none, reason: `${fsType} keeps files in the page cache: O_DIRECT is accepted but buffered` };
  }
  if (device && device.logicalBlockSize > 0) {
    const align = device.logicalBlockSize;
    return {
      supported: true,
      memAlign: align,
      offsetAlign: align,
      readOffsetAlign: align,
      reason: `statx reports no STATX_DIOALIGN here; alignments are the device's logical block size`,
    };
  }
  return { ...none, reason: `${fsType} reports no direct-I/O alignment (statx STATX_DIOALIGN) and has no block device` };
}

export function atomicCapabilities(st: NativeStatx, fsType: string, device: DeviceInfo | undefined): AtomicCapabilities {
  const none = { supported: false, unitMin: 0, unitMax: 0, unitMaxOpt: 0, segmentsMax: 0 };
  if (st.mask & C.STATX_WRITE_ATOMIC && st.writeAtomic && st.atomicWriteUnitMin > 0) {
    return {
      supported: true,
      unitMin: st.atomicWriteUnitMin,
      unitMax: st.atomicWriteUnitMax,
      unitMaxOpt: st.atomicWriteUnitMaxOpt,
      segmentsMax: st.atomicWriteSegmentsMax,
    };
  }
  if (!(st.mask & C.STATX_WRITE_ATOMIC)) {
    return { ...none, reason: `statx reports no atomic-write limits for this ${fsType} file (STATX_WRITE_ATOMIC: Linux 6.11+, filesystems that support it)` };
  }
  const hint =
    fsType === 'ext4'
      ? 'ext4 has no software atomic writes: it needs a device with hardware atomic-write support'
      : fsType === 'xfs'
        ? 'XFS needs reflink=1 (software atomic writes) or a device with hardware atomic-write support'
        : fsType === 'block'
          ? `the device reports atomic_write_unit_max_bytes ${device?.atomicWriteUnitMax ?? 0}`
          : `${fsType} does not support atomic writes`;
  return { ...none, reason: `statx reports no atomic write units: ${hint}` };
}

async function closeQuietly(fd: number): Promise<void> {
  await native.close(fd).catch(() => undefined);
}

/** Opening with O_DIRECT is the only sure test that the filesystem takes it. */
async function openDirectError(target: string, flags: number): Promise<string | undefined> {
  try {
    await closeQuietly(await native.open(target, flags | C.O_DIRECT, 0));
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
}

/** RWF_DONTCACHE support, by a 1-byte buffered write to a scratch file (EOPNOTSUPP when missing). */
async function dontcacheWorks(fd: number, write: boolean): Promise<boolean> {
  const byte = alignedBuffer(1); // odirect memory: async native I/O refuses caller memory
  try {
    if (write) await native.pwritev2(fd, [byte], 0, C.RWF_DONTCACHE);
    else await native.preadv2(fd, [byte], 0, C.RWF_DONTCACHE);
    return true;
  } catch {
    return false;
  }
}

interface ScratchProbe {
  st: NativeStatx;
  openDirectError?: string;
  dontcache: boolean;
}

/** The name of the scratch file probe() makes (and removes) in a directory, before `<pid>-<random>`. */
export const PROBE_SCRATCH_PREFIX = '.odirect-probe-';

/** Probes through a fresh file in `dir`: statx of a regular file, O_DIRECT, RWF_DONTCACHE. Removed after. */
async function probeScratchFile(dir: string): Promise<ScratchProbe> {
  const scratch = path.join(dir, `${PROBE_SCRATCH_PREFIX}${process.pid}-${randomBytes(4).toString('hex')}`);
  let fd: number;
  try {
    fd = await native.open(scratch, C.O_RDWR | C.O_CREAT | C.O_EXCL, 0o600);
  } catch (err) {
    // Name the file that could not be made, not just the directory (EROFS, EACCES).
    const named = withContext(err, { path: scratch });
    if (named instanceof OdirectError) named.message += " (probe's scratch file, made to test O_DIRECT and RWF_DONTCACHE, then removed)";
    throw named;
  }
  try {
    const st = await native.statx(fd);
    return { st, openDirectError: await openDirectError(scratch, C.O_RDWR), dontcache: await dontcacheWorks(fd, true) };
  } finally {
    await closeQuietly(fd);
    await unlink(scratch).catch(() => undefined);
  }
}

/** What open() already learned by opening the file: undefined means "try O_DIRECT here". */
interface KnownOpen {
  directError: string | undefined;
}

async function probeFileOrDirectory(target: string, st: NativeStatx, kind: Kind, known?: KnownOpen): Promise<Capabilities> {
  const fsType = mountById(st.mntId)?.fsType ?? 'unknown';
  const device = deviceInfo(st.devMajor, st.devMinor);
  let fileSt = st;
  let directError: string | undefined;
  let dontcache = false;
  if (kind === 'directory') {
    const scratch = await probeScratchFile(target);
    fileSt = scratch.st;
    directError = scratch.openDirectError;
    dontcache = scratch.dontcache;
  } else {
    // The file's own statx carries its alignments (a reflinked XFS file needs 4096, say);
    // O_DIRECT is tried on the file itself, read-only; RWF_DONTCACHE, a property of the
    // filesystem, once per mount on a scratch sibling (open() probes every file it opens).
    directError = known ? known.directError : await openDirectError(target, C.O_RDONLY);
    const mount = `${st.mntId}:${st.devMajor}:${st.devMinor}`;
    dontcache =
      dontcacheByMount.get(mount) ??
      (await probeScratchFile(path.dirname(target)).then(
        (s) => s.dontcache,
        () => readDontcache(target),
      ));
    dontcacheByMount.set(mount, dontcache);
  }
  return {
    path: target,
    kind,
    fsType,
    size: kind === 'file' ? st.size : 0,
    direct: directCapabilities(fileSt, fsType, device, directError),
    atomic: atomicCapabilities(fileSt, fsType, device),
    dontcache,
    ioUring: uringAvailability(),
    dax: fileSt.dax === 1,
    ...(device ? { device } : {}),
  };
}

/** Where no scratch file can be made: a 1-byte RWF_DONTCACHE read changes nothing. */
async function readDontcache(target: string): Promise<boolean> {
  const fd = await native.open(target, C.O_RDONLY, 0);
  try {
    return await dontcacheWorks(fd, false);
  } finally {
    await closeQuietly(fd);
  }
}

async function probeBlockDevice(target: string, st: NativeStatx, known?: KnownOpen): Promise<Capabilities> {
  const device = deviceInfo(st.rdevMajor, st.rdevMinor);
  const fd = await native.open(target, C.O_RDONLY, 0);
  let size: number;
  let dontcache: boolean;
  try {
    const bdev = await native.blockDevice(fd);
    size = bdev.size;
    if (device) {
      device.logicalBlockSize = bdev.logicalBlockSize;
      device.physicalBlockSize = bdev.physicalBlockSize;
    }
    dontcache = await dontcacheWorks(fd, false); // never write to a device to find out
  } finally {
    await closeQuietly(fd);
  }
  return {
    path: target,
    kind: 'blockDevice',
    fsType: 'block',
    size,
    direct: directCapabilities(st, 'block', device, known ? known.directError : await openDirectError(target, C.O_RDONLY)),
    atomic: atomicCapabilities(st, 'block', device),
    dontcache,
    ioUring: uringAvailability(),
    dax: st.dax === 1,
    ...(device ? { device } : {}),
  };
}

export async function probe(target: string | URL | Buffer): Promise<Capabilities> {
  const resolved = path.resolve(checkPath(target));
  try {
    const st = await native.statx(resolved);
    const kind = kindOf(st, resolved);
    return kind === 'blockDevice'
      ? await probeBlockDevice(resolved, st)
      : await probeFileOrDirectory(resolved, st, kind);
  } catch (err) {
    throw withContext(err, { path: resolved });
  }
}

/**
 * For open(): the capabilities of a file it has already opened as `fd`. statx
 * goes to the fd (the file that was opened, even if the path has changed
 * since), and O_DIRECT is not tried again when open() already knows
 * (`directError` undefined in `known`: it worked; a code: it was refused).
 */
export async function probeOpenFile(target: string, fd: number, known?: KnownOpen): Promise<Capabilities> {
  try {
    const st = await native.statx(fd);
    const kind = kindOf(st, target);
    return kind === 'blockDevice'
      ? await probeBlockDevice(target, st, known)
      : await probeFileOrDirectory(target, st, kind, known);
  } catch (err) {
    throw withContext(err, { path: target });
  }
}
