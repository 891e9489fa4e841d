// What the bench holds while it runs, so an interrupt can let go of it before
// lib/scratch removes the filesystems: child processes (fio, the C reference)
// are killed, files the bench opened under its directories are let go (pointed at
// /dev/null, keeping their numbers: open files would keep the mounts busy), and temp directories of --dir mode are removed.
//
// On exit and on SIGINT/SIGTERM/SIGHUP this runs through the one exit-cleanup
// mechanism of lib/scratch/exit-cleanup.ts: the bench's cleanup is ordered before
// the scratch filesystems' (files close before their filesystem unmounts), and on a
// signal the bench exits with 128+signal once both are done.
import { execFile, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { addCleanup, existingUringEngine, native, onInterrupt, ORDER } from './library';

const children = new Set<ChildProcess>();
const fdRoots = new Set<string>();
const tempDirs = new Set<string>();
let interrupted: NodeJS.Signals | undefined;

export function isInterrupted(): boolean {
  return interrupted !== undefined;
}

/** Open files under `dir` are closed on an interrupt. */
export function trackDirectory(dir: string): void {
  fdRoots.add(dir);
}

export function untrackDirectory(dir: string): void {
  fdRoots.delete(dir);
}

/** `dir` (made by the bench) is removed on an interrupt. */
export function trackTempDir(dir: string): void {
  tempDirs.add(dir);
  fdRoots.add(dir);
}

export function removeTempDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
  fdRoots.delete(dir);
}

export interface CommandResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Runs a command (no shell), killed after `timeoutMs`; tracked so an interrupt kills it. */
export function runCommand(file: string, args: readonly string[], timeoutMs: number): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = execFile(
      file,
      args,
      { encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 << 20, env: { ...process.env, LC_ALL: 'C' } },
      (error, stdout, stderr) => {
        children.delete(child);
        const e = error as (Error & { code?: unknown; signal?: NodeJS.Signals | null; killed?: boolean }) | null;
        resolve({
          code: e ? (typeof e.code === 'number' ? e.code : null) : 0,
          signal: e?.signal ?? null,
          stdout: String(stdout ?? ''),
          stderr: String(stderr ?? '') || (e && typeof e.code === 'string' ? e.message : ''),
          timedOut: Boolean(e?.killed && e.signal === 'SIGKILL'),
        });
      },
    );
    children.add(child);
  });
}

/** Lets go of this process's file descriptors that point into the tracked directories. */
function closeTrackedFds(): void {
  if (!fdRoots.size) return;
  let fds: string[];
  try {
    fds = fs.readdirSync('/proc/self/fd');
  } catch {
    return;
  }
  // The ring's fixed-file table holds DirectFiles' files by reference, past any fd.
  existingUringEngine()?.unregisterAllFiles();
  for (const name of fds) {
    const fd = Number(name);
    if (!Number.isInteger(fd) || fd <= 2) continue;
    let target: string;
    try {
      target = fs.readlinkSync(`/proc/self/fd/${name}`);
    } catch {
      continue;
    }
    for (const root of fdRoots) {
      if (target === root || target.startsWith(root + path.sep)) {
        try {
          // Not close(): ops may still be in flight on this number, and a later
          // open() would reuse it. /dev/null takes the number; the file is let go.
          native.fdToDevNull(fd);
        } catch {
          // already closed
        }
        break;
      }
    }
  }
}

/** Synchronous: kill children, close files, remove temp dirs. Safe to call twice. */
export function releaseEverythingSync(): void {
  for (const child of children) {
    try {
      child.kill('SIGKILL');
    } catch {
      // gone
    }
  }
  closeTrackedFds();
  for (const dir of tempDirs) {
    try {
      fs.rmSync(dir, { recursive: true, force: true });
    } catch (e) {
      process.stderr.write(`odirect bench: could not remove ${dir}: ${(e as Error).message}\n`);
    }
  }
  tempDirs.clear();
}

/**
 * Registers the bench's cleanup and interrupt hook (exit-cleanup.ts). Returns the function that
 * removes them again.
 */
export function installInterruptHandlers(onInterrupted: (signal: NodeJS.Signals) => void): () => void {
  const removeCleanup = addCleanup(ORDER.bench, releaseEverythingSync);
  const removeHook = onInterrupt((signal) => {
    if (!interrupted) {
      interrupted = signal;
      process.stderr.write(`\nodirect bench: ${signal}: stopping, removing what the bench made\n`);
      onInterrupted(signal);
    }
    return 128 + (os.constants.signals[signal] ?? 2);
  });
  return () => {
    removeHook();
    removeCleanup();
  };
}
