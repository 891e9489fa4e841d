// The copy route for caller memory (policies/ownership decides when): the
// kernel only ever sees odirect's pooled bounce memory. A write copies the
// caller's bytes in before it is issued; a read lands in the bounce buffer and
// is copied out when it completes, if the caller's views still have the length
// they had (a view detached or shrunk meanwhile makes the read reject).
import { OdirectError } from '../errors';
import { bouncePool } from '../policies/bounce-pool';

function detachedError(i: number, count: number, before: number, after: number): OdirectError {
  return new OdirectError(
    'ERR_BUFFER_DETACHED',
    `buffer${count > 1 ? ` ${i}` : ''} was detached or resized while the request was under way ` +
      `(${Number.isNaN(before) ? 'empty when issued' : `${before} bytes before, ${after} after`}): no bytes went through it`,
  );
}

/** Throws ERR_BUFFER_DETACHED unless `view` still has the length it had when the request began. */
export function assertViewUnchanged(view: ArrayBufferView, length: number): void {
  if (view.byteLength !== length) throw detachedError(0, 1, length, view.byteLength);
}

/** The total length; a view found empty was detached (or shrunk to nothing) after the request was checked. */
function totalLength(buffers: readonly Uint8Array[]): number {
  let total = 0;
  for (let i = 0; i < buffers.length; i++) {
    const n = buffers[i]!.byteLength;
    if (n === 0) throw detachedError(i, buffers.length, NaN, 0);
    total += n;
  }
  return total;
}

export async function writeThroughCopy(buffers: readonly Uint8Array[], write: (owned: Uint8Array[]) => Promise<number>): Promise<number> {
  const bounce = bouncePool.acquire(totalLength(buffers));
  try {
    let at = 0;
    for (const b of buffers) {
      bounce.set(b, at);
      at += b.byteLength;
    }
    return await write([bounce]);
  } finally {
    bouncePool.release(bounce);
  }
}

export async function readThroughCopy(buffers: readonly Uint8Array[], read: (owned: Uint8Array[]) => Promise<number>): Promise<number> {
  const lengths = buffers.map((b) => b.byteLength);
  const bounce = bouncePool.acquire(totalLength(buffers));
  try {
    const n = await read([bounce]);
    for (let i = 0; i < buffers.length; i++) {
      if (buffers[i]!.byteLength !== lengths[i]) throw detachedError(i, buffers.length, lengths[i]!, buffers[i]!.byteLength);
    }
    let at = 0;
    for (const b of buffers) {
      if (at >= n) break;
      const take = Math.min(b.byteLength, n - at);
      b.set(bounce.subarray(at, at + take));
      at += take;
    }
    return n;
  } finally {
    bouncePool.release(bounce);
  }
}
