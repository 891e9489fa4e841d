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
