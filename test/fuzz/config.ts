// The fuzzer's knobs (environment variables, see test/fuzz.test.ts) and seeds.
import { randomBytes } from 'node:crypto';
import { ENGINES } from '../helpers/engines';

export const MiB = 1 << 20;
export const KiB = 1024;
/** The file never grows past this (writes, allocate and truncate are bounded by it). */
export const MAX_FILE = 4 * MiB;
export const MAX_IO = 64 * KiB;
export const MAX_IN_FLIGHT = 16;
/** Whole-file comparison every this many batches (and always at the end); 1 when bisecting a failure. */
export const VERIFY_EVERY = parseCount(process.env.ODIRECT_FUZZ_VERIFY_EVERY, 25);
export const SECTOR = 512; // dio_offset_align and dio_mem_align on both filesystems here (asserted)
export const PAGE = 4096;

export const FILESYSTEMS = ['xfs', 'ext4'] as const;
export const TOTAL_OPS = parseCount(process.env.ODIRECT_FUZZ_OPS, 20_000);
export const BASE_SEED = parseSeed(process.env.ODIRECT_FUZZ_SEED);
export const PAGE_DISJOINT = process.env.ODIRECT_FUZZ_PAGE_DISJOINT === '1';
export const SERIAL = process.env.ODIRECT_FUZZ_SERIAL === '1';
export const TRACE = process.env.ODIRECT_FUZZ_TRACE === '1';
export const READ_PAST_EOF_BLOCK = process.env.ODIRECT_FUZZ_READ_PAST_EOF !== '0';
export const COMBOS = Math.max(1, FILESYSTEMS.length * ENGINES.length);
export const OPS_PER_COMBO = Math.ceil(TOTAL_OPS / COMBOS);

export function parseCount(text: string | undefined, fallback: number): number {
  if (text === undefined || text === '') return fallback;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`ODIRECT_FUZZ_OPS must be a positive integer, got ${text}`);
  return n;
}

export function parseSeed(text: string | undefined): number {
  if (text === undefined || text === '') return randomBytes(4).readUInt32LE(0);
  const n = Number(text); // decimal or 0x… hex
  if (!Number.isSafeInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`ODIRECT_FUZZ_SEED must be a 32-bit unsigned integer, got ${text}`);
  return n >>> 0;
}

export const hex = (n: number): string => `0x${(n >>> 0).toString(16).padStart(8, '0')}`;

/** FNV-1a of a string, mixed with the base seed: each combination has its own stream. */
export function comboSeed(base: number, name: string): number {
  let h = 0x811c9dc5 ^ base;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

