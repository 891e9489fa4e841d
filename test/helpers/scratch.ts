/**
 * Access to the scratch filesystems made by ./global-setup.ts, from inside test files.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, inject, it } from 'vitest';
import type { ScratchEnv } from './global-setup';

export type { ScratchEnv };

declare module 'vitest' {
  export interface ProvidedContext {
    scratch: ScratchEnv;
  }
}

export type ScratchFsName = 'ext4' | 'xfs' | 'ext4Journal' | 'tiny' | 'rawDevice' | 'tmpfs';

/** What global setup made. Throws if the globalSetup did not run (wrong vitest config). */
export function scratchEnv(): ScratchEnv {
  const env = inject('scratch');
  if (!env) throw new Error("inject('scratch') is empty: run vitest with globalSetup test/helpers/global-setup.ts");
  return env;
}

/** On CI (or when asked) missing loop devices are a failure, not a reason to skip. */
export function requireLoop(): boolean {
  return process.env['CI'] === 'true' || process.env['ODIRECT_REQUIRE_LOOP'] === '1';
}

/** Why `name` is not usable, or null if it is. */
function unavailableReason(env: ScratchEnv, name: ScratchFsName): string | null {
  if (name === 'tmpfs') return null;
  if (!env.available) return env.reason ?? 'loop-device filesystems unavailable';
  if (!env[name]) return `global setup made no '${name}' scratch filesystem`;
  return null;
}

/**
 * `describe(title)` with the mountpoint (or device path, for 'rawDevice') of a shared scratch fs.
 * Unavailable: skipped with the reason in the title, or — under requireLoop() — one failing test.
 */
export function describeOnFs(name: ScratchFsName, title: string, fn: (dir: string) => void): void {
  const env = scratchEnv();
  const reason = unavailableReason(env, name);
  if (reason === null) {
    const target = env[name] as string;
    describe(title, () => fn(target));
  } else if (requireLoop()) {
    describe(title, () => {
      it(`needs the '${name}' scratch filesystem`, () => {
        throw new Error(`'${name}' scratch filesystem unavailable (CI=true or ODIRECT_REQUIRE_LOOP=1 forbids skipping): ${reason}`);
      });
    });
  } else {
    // fn is not called: it may use the path while collecting tests.
    describe.skip(`${title} [skipped: ${reason}]`, () => {
      it.skip(`needs the '${name}' scratch filesystem`, () => {});
    });
  }
}

/** A fresh, empty subdirectory of `root` for one test file (root is shared by all test files). */
export function uniqueDir(root: string, tag: string): string {
  const safeTag = tag.replace(/[^A-Za-z0-9_.-]+/g, '_').slice(0, 60) || 'test';
  const dir = fs.mkdtempSync(path.join(root, `${safeTag}-`));
  fs.chmodSync(dir, 0o777);
  return dir;
}
