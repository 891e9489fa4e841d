// Self-describing regions for the torn-write hunt and the crash test: every
// 512-byte sector carries the region, the generation and its own index, and
// a CRC32 of the rest. A region read back is whole (one generation in every
// sector), torn (more than one), or corrupt (a bad sector).
import { crc32 } from 'node:zlib';

export const SECTOR = 512;
const MAGIC = 0x4f445641; // "ODVA"

/** Fills `into` (a whole region) with generation `gen` of region `region`. */
export function fillRegion(into: Uint8Array, region: number, gen: number): void {
  const view = new DataView(into.buffer, into.byteOffset, into.byteLength);
  for (let s = 0; s * SECTOR < into.byteLength; s++) {
    const at = s * SECTOR;
    view.setUint32(at, MAGIC, true);
    view.setUint32(at + 4, region, true);
    view.setUint32(at + 8, gen, true);
    view.setUint32(at + 12, s, true);
    // Payload that differs per generation, so a stale sector cannot pass for a new one.
    let x = (region * 2654435761 + gen * 40503 + s * 9973) >>> 0;
    for (let i = 16; i < SECTOR - 4; i += 4) {
      x = (x ^ (x << 13)) >>> 0;
      x = (x ^ (x >>> 17)) >>> 0;
      x = (x ^ (x << 5)) >>> 0;
      view.setUint32(at + i, x, true);
    }
    view.setUint32(at + SECTOR - 4, crc32(into.subarray(at, at + SECTOR - 4)), true);
  }
}

export type RegionState =
  | { kind: 'whole'; gen: number }
  | { kind: 'empty' } // never written: all zeros
  | { kind: 'torn'; gens: number[] }
  | { kind: 'corrupt'; sector: number; why: string };

export function checkRegion(data: Uint8Array, region: number): RegionState {
  if (data.every((b) => b === 0)) return { kind: 'empty' };
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const gens = new Set<number>();
  for (let s = 0; s * SECTOR < data.byteLength; s++) {
    const at = s * SECTOR;
    const sector = data.subarray(at, at + SECTOR);
    if (view.getUint32(at, true) !== MAGIC) return { kind: 'corrupt', sector: s, why: 'no magic' };
    if (view.getUint32(at + SECTOR - 4, true) !== crc32(sector.subarray(0, SECTOR - 4))) {
      return { kind: 'corrupt', sector: s, why: 'checksum mismatch' };
    }
    if (view.getUint32(at + 4, true) !== region) return { kind: 'corrupt', sector: s, why: 'belongs to another region' };
    if (view.getUint32(at + 12, true) !== s) return { kind: 'corrupt', sector: s, why: 'sector out of place' };
    gens.add(view.getUint32(at + 8, true));
  }
  if (gens.size === 1) return { kind: 'whole', gen: [...gens][0]! };
  return { kind: 'torn', gens: [...gens].sort((a, b) => a - b) };
}

/**
 * What a read of a region that was written whole before any read showed, sector
 * by sector: the worst class wins (corrupt, then zero, then stale, then torn).
 * corrupt: the hunt's magic with a bad checksum. stale: intact sectors of another
 * region or place, or data that is not the hunt's (blocks that held something
 * else). `whole` is judged against the write history by the caller (an old
 * generation is stale too).
 */
export type ReadClass =
  | { kind: 'whole'; gen: number }
  | { kind: 'torn'; gens: number[] }
  | { kind: 'zero'; sectors: number }
  | { kind: 'stale'; why: string }
  | { kind: 'corrupt'; sector: number; why: string };

export function classifyRead(data: Uint8Array, region: number): ReadClass {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const gens = new Set<number>();
  let zero = 0;
  let foreign: string | undefined;
  let corrupt: { sector: number; why: string } | undefined;
  for (let s = 0; s * SECTOR < data.byteLength; s++) {
    const at = s * SECTOR;
    const sector = data.subarray(at, at + SECTOR);
    if (sector.every((b) => b === 0)) {
      zero++;
      continue;
    }
    if (view.getUint32(at, true) !== MAGIC) {
      // Not the hunt's data at all: the old contents of blocks that belonged to something else.
      foreign ??= `sector ${s} holds data that is not the hunt's (no magic)`;
      continue;
    }
    if (view.getUint32(at + SECTOR - 4, true) !== crc32(sector.subarray(0, SECTOR - 4))) {
      corrupt ??= { sector: s, why: 'checksum mismatch' };
      continue;
    }
    const owner = view.getUint32(at + 4, true);
    const index = view.getUint32(at + 12, true);
    if (owner !== region || index !== s) {
      foreign ??= `sector ${s} holds sector ${index} of region ${owner}, generation ${view.getUint32(at + 8, true)}`;
      continue;
    }
    gens.add(view.getUint32(at + 8, true));
  }
  if (corrupt) return { kind: 'corrupt', ...corrupt };
  if (zero > 0) return { kind: 'zero', sectors: zero };
  if (foreign) return { kind: 'stale', why: foreign };
  if (gens.size > 1) return { kind: 'torn', gens: [...gens].sort((a, b) => a - b) };
  return { kind: 'whole', gen: [...gens][0]! };
}
