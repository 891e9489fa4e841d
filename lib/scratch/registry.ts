// What this process made and has not removed yet, and the slow commands still running: kept on
// the process object, so a second copy of these modules (lib/ and dist/, test runners) shares it.
import type { ChildProcess } from 'node:child_process';
import type { ScratchFs } from './types';

export interface ProcessState {
  /** Scratch filesystems this process made and has not removed yet (including half-made ones). */
  liveScratch: Map<string, ScratchFs>;
  /** Slow commands (mkfs) still running, so an interrupt can kill them before cleaning up. */
  runningChildren: Set<ChildProcess>;
}

/**
 * Kept on the process object, not in module scope: test runners may load this module more than
 * once per process (or load both lib/ and dist/ copies), and the registry and the exit/signal
 * handlers must still exist exactly once.
 */
export const STATE_KEY = Symbol.for('odirect.scratchfs.processState');
export const processState: ProcessState = ((process as unknown as Record<symbol, ProcessState | undefined>)[STATE_KEY] ??= {
  liveScratch: new Map(),
  runningChildren: new Set(),
});
export const liveScratch = processState.liveScratch;
export const runningChildren = processState.runningChildren;
