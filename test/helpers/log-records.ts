// Record contents the log tests can check without keeping copies: every
// byte follows from (key, size), and different keys give different bytes.

/** A deterministic record of `size` bytes for `key` (xorshift32 stream seeded by the key). */
export function recordBytes(key: number, size: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  let x = (Math.imul(key + 1, 0x9e3779b1) ^ 0x5bd1e995) >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

/** A size from 0 to max, skewed small (most records are short, some are large). */
export function randomSize(max: number, rand: () => number = Math.random): number {
  const r = rand();
  return Math.floor(r * r * r * (max + 1));
}

/** A seeded PRNG in [0, 1) (mulberry32), so a failing run can be repeated. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
