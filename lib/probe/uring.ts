// Can this process set up an io_uring, and if not, why.
import { readFileSync } from 'node:fs';
import { native } from '../native';

export interface UringAvailability {
  available: boolean;
  reason?: string;
}

let cached: UringAvailability | undefined;

function sysctlDisabled(): string | undefined {
  try {
    const value = readFileSync('/proc/sys/kernel/io_uring_disabled', 'utf8').trim();
    return value === '0' ? undefined : value;
  } catch {
    return undefined;
  }
}

export function uringAvailability(): UringAvailability {
  if (cached) return cached;
  // Test switch: pretend setup failed with this errno name, e.g. EPERM.
  const simulated = process.env.ODIRECT_SIMULATE_URING_FAILURE;
  if (simulated) {
    return (cached = { available: false, reason: `io_uring setup failed with ${simulated} (simulated by ODIRECT_SIMULATE_URING_FAILURE)` });
  }
  const support = native.uringSupport();
  const { errno } = support;
  // Test switch: pretend the opcode probe lacks these (comma list, e.g. READ,WRITE: a 5.1–5.5 kernel).
  const simulatedMissing = process.env.ODIRECT_SIMULATE_URING_MISSING_OPS;
  const missing = simulatedMissing ? simulatedMissing.split(',').map((m) => m.trim()) : support.missing;
  if (errno === 0 && missing.length === 0) return (cached = { available: true });
  if (errno === 0) {
    // 5.1–5.5 set up a ring but lack READ/WRITE (5.6) and more: the engine would fail on the first I/O.
    return (cached = { available: false, reason: `io_uring lacks the opcodes ${missing.map((m) => `IORING_OP_${m}`).join(', ')} (probe)` });
  }
  const disabled = sysctlDisabled();
  let reason: string;
  if (errno === 38) reason = 'io_uring_setup returned ENOSYS: this kernel was built without io_uring';
  else if (errno === 1 && disabled !== undefined)
    reason = `io_uring_setup returned EPERM: sysctl kernel.io_uring_disabled=${disabled}`;
  else if (errno === 1) reason = 'io_uring_setup returned EPERM: blocked by a seccomp filter or a security module';
  else if (errno === 12) reason = 'io_uring_setup returned ENOMEM: locked-memory limit (RLIMIT_MEMLOCK) too low';
  else reason = `io_uring_setup failed with errno ${errno}`;
  return (cached = { available: false, reason });
}
