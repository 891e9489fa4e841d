// Running the system tools (losetup, mount, umount, mkfs), with timeouts and readable failures.
import { execFile, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runningChildren } from './registry';

export const TIMEOUT_QUICK_MS = 15_000; // losetup
export const TIMEOUT_MOUNT_MS = 60_000; // mount/umount (umount may have to write back dirty data)
export const TIMEOUT_MKFS_MS = 180_000;


export const SYSTEM_BIN_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
export const toolPathCache = new Map<string, string | null>();

/** Finds a tool in PATH or the usual sbin dirs (non-login shells often lack /usr/sbin in PATH). */
export function findTool(name: string): string | null {
  const cached = toolPathCache.get(name);
  if (cached !== undefined) return cached;
  const dirs = [...(process.env['PATH'] ?? '').split(':').filter(Boolean), ...SYSTEM_BIN_DIRS];
  let found: string | null = null;
  for (const dir of dirs) {
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) {
        found = candidate;
        break;
      }
    } catch {
      // not here
    }
  }
  toolPathCache.set(name, found);
  return found;
}

export function requireTool(name: string): string {
  const found = findTool(name);
  if (!found) throw new Error(`scratchfs: required tool '${name}' not found in PATH or ${SYSTEM_BIN_DIRS.join(':')}`);
  return found;
}

export function commandLine(tool: string, args: string[]): string {
  return [tool, ...args].join(' ');
}

/** C locale keeps tool messages stable and English for error reports. */
export const COMMAND_ENV = { ...process.env, LC_ALL: 'C' };

export interface CommandResult {
  ok: boolean;
  stdout: string;
  stderr: string;
  /** Human-readable failure description including stderr; '' when ok. */
  failure: string;
}

export function runSync(tool: string, args: string[], timeoutMs: number): CommandResult {
  const r = spawnSync(requireTool(tool), args, {
    encoding: 'utf8',
    timeout: timeoutMs,
    killSignal: 'SIGKILL',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: COMMAND_ENV,
  });
  const stdout = r.stdout ?? '';
  const stderr = conciseOutput(r.stderr ?? '');
  let failure = '';
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    failure =
      code === 'ETIMEDOUT'
        ? `\`${commandLine(tool, args)}\` timed out after ${timeoutMs / 1000}s`
        : `\`${commandLine(tool, args)}\` could not run: ${r.error.message}`;
  } else if (r.status !== 0) {
    failure = `\`${commandLine(tool, args)}\` failed (${r.status === null ? `signal ${r.signal}` : `exit ${r.status}`})`;
  }
  if (failure && stderr) failure += `: ${stderr}`;
  return { ok: failure === '', stdout, stderr, failure };
}

export function runSyncOrThrow(tool: string, args: string[], timeoutMs: number): string {
  const r = runSync(tool, args, timeoutMs);
  if (!r.ok) throw new Error(`scratchfs: ${r.failure}`);
  return r.stdout;
}

/** Async variant for slow commands (mkfs), tracked so an interrupt handler can kill it. */
export function runAsyncOrThrow(tool: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      requireTool(tool),
      args,
      { encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL', env: COMMAND_ENV, maxBuffer: 16 << 20 },
      (error, stdout, stderr) => {
        runningChildren.delete(child);
        if (!error) return resolve(stdout);
        const timedOut = (error as { killed?: boolean }).killed === true;
        const what = timedOut ? `timed out after ${timeoutMs / 1000}s` : `failed (${describeExecError(error)})`;
        const details = conciseOutput(String(stderr ?? '')) || conciseOutput(String(stdout ?? ''));
        reject(new Error(`scratchfs: \`${commandLine(tool, args)}\` ${what}${details ? `: ${details}` : ''}`));
      },
    );
    runningChildren.add(child);
  });
}

/** Tool stderr for error messages, without the usage screen some tools print after the real error. */
export function conciseOutput(text: string): string {
  const trimmed = text.split(/^Usage:/m)[0]!.trim();
  return trimmed.length > 2000 ? trimmed.slice(0, 2000) + ' …' : trimmed;
}

export function describeExecError(error: Error & { code?: unknown; signal?: unknown }): string {
  if (typeof error.code === 'number') return `exit ${error.code}`;
  if (error.signal) return `signal ${String(error.signal)}`;
  return error.message;
}

export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
