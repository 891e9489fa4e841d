// replaceFile: crash-safe replacement of a whole file. After a crash at any
// point the path holds the old content or the new, never a mix, a prefix or
// nothing (as long as the old one was durable).
//
// 1. A temp file in the same directory (rename only works within one
//    filesystem), created O_EXCL under a unique name, mode of the target.
// 2. The data written into it direct (writeInto: allocated at its size,
//    aligned blocks, padded tail, truncated to the exact size).
// 3. fdatasync: the data and the size are on disk before the name points at
//    them. Without it a crash can leave the new name on a file whose blocks
//    or size never made it (the zero-length-file-after-crash bug ext4's
//    auto_da_alloc papers over for buffered writes only).
// 4. rename over the target: atomic, readers see old or new.
// 5. fsync of the directory: the rename itself is durable before we resolve.
//    Without it a crash can bring back the old version after we said the new
//    one was written (measured in test/replace-crash.test.ts).
// 6. fsync of the new file, after the directory's: on XFS a directory fsync
//    can return 0 when a shutdown (crash, log I/O error) aborted the log write
//    holding the rename, so the rename is lost though fsync said it was
//    durable; a file fsync checks for the shutdown first and fails with EIO.
//    See docs/replace-durability.md (measured there).
// The temp file is removed if any step fails. Calls for one path in this
// process run one after another, so the last call's content is what stays;
// across processes the last rename wins, and each rename puts a whole file.
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { OdirectError, fsCall, withContext } from './errors';
import { open } from './file';
import { C, native } from './native';
import { checkData, resolveWriteFileOptions, writeInto, type WriteFileOptions } from './streams/whole-file';
import { checkPath } from './validate';
import { throwIfAborted } from './habits';

export interface ReplaceFileOptions extends Omit<WriteFileOptions, 'flags' | 'dsync'> {
  /**
   * Mode of the new file. Default: the mode of the file it replaces (as
   * write-file-atomic does), or 0o666 before umask when there is none. Owner
   * and group are not carried over.
   */
  mode?: number;
}

/** The steps that make a replace crash-safe; tests turn one off to show the crash cycles catch it. */
export interface ReplaceSteps {
  syncData: boolean;
  syncDir: boolean;
  /** fsync of the new file after the directory's (step 6). Default true. */
  syncFileAfterDir?: boolean;
  /** Tests only: runs right after the rename, before the syncs (where a test shuts the filesystem down). */
  afterRename?: () => Promise<void>;
  /** Tests only: runs right after the temp file is created, before its mode is set (where a test makes that fail). */
  afterCreate?: (temp: string) => Promise<void>;
}

const ALL_STEPS: ReplaceSteps = { syncData: true, syncDir: true, syncFileAfterDir: true };

/** The calls in flight per path in this process: each waits for the one before. */
const queues = new Map<string, Promise<unknown>>();
let counter = 0;

export function replaceFile(target: string, data: Uint8Array | string, options?: ReplaceFileOptions): Promise<void> {
  return replaceFileWith(target, data, options, ALL_STEPS);
}

/** Temp files are named `.<name>.odirect-<pid>-<n>-<random>.tmp`; one a crash left behind can be removed. */
export function tempNameFor(target: string): string {
  const unique = `${process.pid}-${++counter}-${randomBytes(6).toString('hex')}`;
  return path.join(path.dirname(target), `.${path.basename(target)}.odirect-${unique}.tmp`);
}

export async function replaceFileWith(
  target: string,
  data: Uint8Array | string,
  options: ReplaceFileOptions | undefined,
  steps: ReplaceSteps,
): Promise<void> {
  const p = path.resolve(checkPath(target));
  const bytes = checkData(data);
  const explicitMode = (options as { mode?: unknown } | undefined)?.mode;
  const o = resolveWriteFileOptions({ ...options, flags: 'wx', dsync: false });
  const previous = queues.get(p) ?? Promise.resolve();
  const mine = previous.then(
    () => replaceNow(p, bytes, o, explicitMode === undefined ? undefined : o.mode, steps),
    () => replaceNow(p, bytes, o, explicitMode === undefined ? undefined : o.mode, steps),
  );
  const tail = mine.catch(() => undefined);
  queues.set(p, tail);
  void tail.then(() => {
    if (queues.get(p) === tail) queues.delete(p);
  });
  return mine;
}

async function replaceNow(
  target: string,
  data: Uint8Array,
  o: ReturnType<typeof resolveWriteFileOptions>,
  mode: number | undefined,
  steps: ReplaceSteps,
): Promise<void> {
  throwIfAborted(o.signal, 'replaceFile');
  const keepMode = mode === undefined ? await existingMode(target) : undefined;
  const temp = tempNameFor(target);
  const file = await open(temp, {
    create: true,
    exclusive: true,
    mode: mode ?? keepMode ?? 0o666,
    engine: o.engine,
  });
  let renamed = false;
  try {
    try {
      await steps.afterCreate?.(temp);
      // The target's mode exactly, not as the umask leaves it.
      if (keepMode !== undefined) await fsCall(fsp.chmod(temp, keepMode), temp);
      await writeInto(file, data, o, steps.syncData);
    } finally {
      await file.close();
    }
    throwIfAborted(o.signal, 'replaceFile');
    // Both opened before the rename: step 6 then syncs this file whatever
    // another process renames onto the target meanwhile, and no open (which
    // fails with EIO once the filesystem is down) sits between rename and sync.
    const dir = path.dirname(target);
    const dirFd = steps.syncDir ? await openForSync(dir, C.O_RDONLY | C.O_DIRECTORY) : undefined;
    let renamedFd: number | undefined;
    try {
      if (steps.syncFileAfterDir !== false) renamedFd = await openForSync(temp, C.O_RDONLY);
      await fsp.rename(temp, target).catch((err: unknown) => {
        throw withContext(err, { path: target });
      });
      renamed = true;
      await steps.afterRename?.();
      if (dirFd !== undefined) await fsyncFd(dirFd, dir);
      // After the directory fsync, never before: its check for a shutdown
      // must come after the directory fsync returned (docs/replace-durability.md).
      if (renamedFd !== undefined) await fsyncFd(renamedFd, target);
    } finally {
      for (const fd of [renamedFd, dirFd]) if (fd !== undefined) await native.close(fd).catch(() => undefined);
    }
  } catch (err) {
    if (!renamed) await fsp.unlink(temp).catch(() => undefined);
    throw err;
  }
}

async function openForSync(file: string, flags: number): Promise<number> {
  return native.open(file, flags, 0).catch((err: unknown) => {
    throw withContext(err, { path: file });
  });
}

async function fsyncFd(fd: number, where: string): Promise<void> {
  try {
    await native.fsync(fd);
  } catch (err) {
    throw withContext(err, { path: where }) as OdirectError;
  }
}

async function existingMode(target: string): Promise<number | undefined> {
  try {
    return (await fsp.stat(target)).mode & 0o7777;
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return undefined;
    throw withContext(err, { path: target });
  }
}

/** fsync of a directory: its entries (a rename into it) are durable. */
export async function syncDirectory(dir: string): Promise<void> {
  const fd = await native.open(dir, C.O_RDONLY | C.O_DIRECTORY, 0).catch((err: unknown) => {
    throw withContext(err, { path: dir });
  });
  try {
    await native.fsync(fd);
  } catch (err) {
    throw withContext(err, { path: dir }) as OdirectError;
  } finally {
    await native.close(fd).catch(() => undefined);
  }
}
