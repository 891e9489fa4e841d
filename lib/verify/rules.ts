// Checks the kernel's own atomic-write rules on a filesystem (generic_atomic_write_valid,
// kernel-facts §2) with raw RWF_ATOMIC calls, bypassing odirect's precheck:
// every invalid class is refused with the expected errno and writes nothing;
// every valid size from unitMin to unitMax succeeds and reads back.
import { randomBytes } from 'node:crypto';
import { unlink } from 'node:fs/promises';
import * as path from 'node:path';
import { alignedBuffer } from '../aligned';
import { C, native } from '../native';
import type { Capabilities } from '../types';

export interface RuleCheck {
  rule: string;
  expected: string;
  got: string;
  /** The file's bytes and size were the same afterwards. */
  unchanged: boolean;
  ok: boolean;
}

export interface SizeCheck {
  size: number;
  ok: boolean;
  got: string;
}

export interface RulesReport {
  rules: RuleCheck[];
  sizes: SizeCheck[];
}

function codeOf(fn: () => number): string {
  try {
    return `ok (${fn()} bytes)`;
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
}

function pattern(size: number, seed: number): Buffer {
  const b = alignedBuffer(size);
  for (let i = 0; i < size; i++) b[i] = (i * 131 + seed) & 0xff;
  return b;
}

/** Largest size the size sweep goes up to, so a 64 MiB unitMax does not write 128 MiB. */
const SWEEP_MAX = 8 << 20;

export async function checkAtomicRules(dir: string, caps: Capabilities): Promise<RulesReport> {
  const file = path.join(dir, `.odirect-verify-rules-${randomBytes(4).toString('hex')}`);
  const unitMin = caps.atomic.unitMin || 4096;
  const unitMax = caps.atomic.unitMax || unitMin;
  const span = Math.max(2 * Math.min(unitMax, SWEEP_MAX), 4 * unitMin);
  const baseline = pattern(span, 7);
  const fd = native.openSync(file, C.O_RDWR | C.O_CREAT | C.O_EXCL | C.O_DIRECT, 0o600);
  let buffered = -1;
  const report: RulesReport = { rules: [], sizes: [] };
  try {
    // Inside the try: if this open fails, the first fd and the file still go.
    buffered = native.openSync(file, C.O_RDWR, 0);
    native.pwritev2Sync(fd, [baseline], 0, 0);
    native.fsyncSync(fd);
    const unchanged = (): boolean => {
      if (native.statxSync(fd).size !== span) return false;
      const back = alignedBuffer(span);
      return native.preadv2Sync(fd, [back], 0, 0) === span && back.equals(baseline);
    };
    const expect = (rule: string, expected: string, call: () => number) => {
      const got = codeOf(call);
      const same = unchanged();
      report.rules.push({ rule, expected, got, unchanged: same, ok: got === expected && same });
      if (!same) native.pwritev2Sync(fd, [baseline], 0, 0); // restore for the next rule
    };
    if (!caps.atomic.supported) {
      expect('filesystem without atomic writes', 'EOPNOTSUPP', () => native.pwritev2Sync(fd, [pattern(unitMin, 1)], 0, C.RWF_ATOMIC));
      return report;
    }
    if (3 * unitMin <= unitMax) {
      expect('length not a power of two', 'EINVAL', () => native.pwritev2Sync(fd, [pattern(3 * unitMin, 1)], 0, C.RWF_ATOMIC));
    }
    if (2 * unitMin <= unitMax) {
      expect('offset not naturally aligned', 'EINVAL', () =>
        native.pwritev2Sync(fd, [pattern(2 * unitMin, 2)], unitMin, C.RWF_ATOMIC),
      );
    }
    expect('length above unitMax', 'EINVAL', () => native.pwritev2Sync(fd, [pattern(2 * unitMax, 3)], 0, C.RWF_ATOMIC));
    if (unitMin / 2 >= caps.direct.offsetAlign && unitMin > caps.direct.offsetAlign) {
      expect('length below unitMin', 'EINVAL', () => native.pwritev2Sync(fd, [pattern(unitMin / 2, 4)], 0, C.RWF_ATOMIC));
    }
    if (caps.atomic.segmentsMax <= 1) {
      expect('two segments', 'EINVAL', () =>
        native.pwritev2Sync(fd, [pattern(unitMin / 2, 5), pattern(unitMin / 2, 6)], 0, C.RWF_ATOMIC),
      );
    }
    expect('buffered (not O_DIRECT) fd', 'EOPNOTSUPP', () =>
      native.pwritev2Sync(buffered, [pattern(unitMin, 7)], 0, C.RWF_ATOMIC),
    );
    for (let size = unitMin; size <= Math.min(unitMax, SWEEP_MAX); size *= 2) {
      const data = pattern(size, size & 0xff);
      let got = codeOf(() => native.pwritev2Sync(fd, [data], size, C.RWF_ATOMIC));
      const back = alignedBuffer(size);
      const readBack = native.preadv2Sync(fd, [back], size, 0) === size && back.equals(data);
      if (got === `ok (${size} bytes)` && !readBack) got = 'wrote, but read back different bytes';
      report.sizes.push({ size, ok: got === `ok (${size} bytes)` && readBack, got });
    }
    return report;
  } finally {
    if (buffered >= 0) native.closeSync(buffered);
    native.closeSync(fd);
    await unlink(file).catch(() => undefined);
  }
}
