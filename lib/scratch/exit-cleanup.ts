/**
 * One mechanism for removing what a process made when it ends: on exit, on SIGINT/SIGTERM/SIGHUP
 * and on a fatal uncaught exception. The scratch filesystems (./scratchfs.ts) and the bench
 * (bench/src/cleanup.ts: child processes, open files, temp dirs) both register here.
 *
 * - Cleanups are synchronous, run in ascending `order` (the bench's before the scratch
 *   filesystems': files must close before their filesystem unmounts), each at most once per
 *   trigger, and may be run again by a later trigger (they must be idempotent).
 * - On a signal, interrupt hooks run first. A hook that returns an exit code takes over the
 *   exit: the process exits with it once the cleanups are done. Otherwise, if nobody else
 *   listens for the signal, it is re-raised so the process dies the usual way; if someone else
 *   listens (e.g. vitest), they decide how to exit.
 * - The listeners are installed once per process, even when this module is loaded twice (lib/
 *   and dist/ copies, test runners): the state lives on the process object.
 * - After a fatal uncaught exception the cleanups run only when no 'uncaughtException' listener
 *   exists: with one, the process survives, and so must what it made.
 *
 * Only node built-ins are used.
 */

export type Signal = 'SIGINT' | 'SIGTERM' | 'SIGHUP';
export const SIGNALS: readonly Signal[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** Run order: the bench's resources (files, children, temp dirs) before the filesystems under them. */
export const ORDER = { bench: 10, scratch: 20 } as const;

interface Cleanup {
  order: number;
  run: () => void;
}

/** A hook run first on a signal; an exit code it returns means "exit with this after cleaning up". */
export type InterruptHook = (signal: Signal) => number | void;

interface State {
  cleanups: Cleanup[];
  hooks: Set<InterruptHook>;
  installed: boolean;
  /** Other modules' once-per-process flags (e.g. the scratch registry's). */
  flags: Set<string>;
}

const STATE_KEY = Symbol.for('odirect.exitCleanup.state');
const state: State = ((process as unknown as Record<symbol, State | undefined>)[STATE_KEY] ??= {
  cleanups: [],
  hooks: new Set(),
  installed: false,
  flags: new Set(),
});

/** True the first time `flag` is claimed in this process (whichever copy of a module asks). */
export function claimOnce(flag: string): boolean {
  if (state.flags.has(flag)) return false;
  state.flags.add(flag);
  return true;
}

/** Registers a synchronous cleanup; returns the function that unregisters it. */
export function addCleanup(order: number, run: () => void): () => void {
  const entry: Cleanup = { order, run };
  state.cleanups.push(entry);
  state.cleanups.sort((a, b) => a.order - b.order);
  install();
  return () => {
    const i = state.cleanups.indexOf(entry);
    if (i >= 0) state.cleanups.splice(i, 1);
  };
}

/** Registers a hook run first on SIGINT/SIGTERM/SIGHUP; returns the function that unregisters it. */
export function onInterrupt(hook: InterruptHook): () => void {
  state.hooks.add(hook);
  install();
  return () => {
    state.hooks.delete(hook);
  };
}

/** Runs every cleanup now, in order. Never throws. */
export function runCleanups(): void {
  for (const { run } of [...state.cleanups]) {
    try {
      run();
    } catch (e) {
      process.stderr.write(`odirect: cleanup failed: ${(e as Error).message}\n`);
    }
  }
}

function install(): void {
  if (state.installed) return;
  state.installed = true;
  // Prepended: a listener that calls process.exit() (vitest's does, on exit and on signals) ends
  // the process on the spot, so listeners registered after it would never run.
  process.prependListener('exit', runCleanups);
  process.prependListener('uncaughtExceptionMonitor', () => {
    if (process.listenerCount('uncaughtException') === 0) runCleanups();
  });
  for (const signal of SIGNALS) {
    const onSignal = (): void => {
      let exitCode: number | undefined;
      for (const hook of [...state.hooks]) {
        try {
          const code = hook(signal);
          if (typeof code === 'number') exitCode ??= code;
        } catch (e) {
          process.stderr.write(`odirect: interrupt hook failed: ${(e as Error).message}\n`);
        }
      }
      runCleanups();
      if (exitCode !== undefined) {
        const code = exitCode;
        setImmediate(() => process.exit(code));
        return;
      }
      if (process.listenerCount(signal) > 1) return;
      process.removeListener(signal, onSignal);
      process.kill(process.pid, signal);
    };
    process.prependListener(signal, onSignal);
  }
}
