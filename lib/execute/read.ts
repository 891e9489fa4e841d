// Doing a read: decide its route (policies/route.ts), run it, retry once clamped on EIO.
import { assertViewUnchanged } from '../engines/caller-memory';
import { bouncePool } from '../mechanisms/bounce-pool';
import { countRead, decideRead, readNeedsSize, type ReadRequest, type ReadRoute } from '../policies/route';
import type { FileStats } from '../types';
import type { FileContext } from './context';

const EIO = 5;

/** Reads into `request.into` at `request.position`; bytes read (fewer at end of file). Refusals throw before any I/O. */
export async function performRead(file: FileContext, request: ReadRequest, stats: FileStats): Promise<number> {
  const size = readNeedsSize(request, file.facts, file.size.value) ? file.statSize() : undefined;
  const route = decideRead(request, file.facts, size);
  if (route.kind === 'refused') throw route.error;
  const attempts: ReadRoute['kind'][] = [route.kind];
  let n: number;
  try {
    n = await executeRead(file, request, route);
  } catch (err) {
    // The size this handle knows can be stale (another handle cut the file):
    // if the read ran past the block holding EOF, ask again, clamped, once.
    if ((err as { errno?: number }).errno !== EIO || route.kind === 'buffered') throw err;
    const clamped = decideRead(request, file.facts, file.statSize());
    if (clamped.kind === 'refused' || clamped.length >= route.length) throw err;
    attempts.push(clamped.kind);
    n = await executeRead(file, request, clamped);
  }
  countRead(stats, attempts, n);
  return n;
}

async function executeRead(file: FileContext, request: ReadRequest, route: Exclude<ReadRoute, { kind: 'refused' }>): Promise<number> {
  const { into, position } = request;
  switch (route.kind) {
    case 'empty':
      return 0;
    case 'buffered':
      return file.io.readv(await file.buffered(), [into], position, 0);
    case 'direct':
      return file.io.readv(file.fd, [route.length === into.byteLength ? into : into.subarray(0, route.length)], position, 0);
    case 'bounced': {
      // Read the enclosing aligned range and copy out the part asked for.
      const { span, length } = route;
      const bounce = bouncePool.acquire(span.end - span.start);
      try {
        const intoLength = into.byteLength;
        const n = await file.io.readv(file.fd, [bounce], span.start, 0);
        const available = Math.max(0, Math.min(length, span.start + n - position));
        assertViewUnchanged(into, intoLength); // detached or shrunk while the read ran: a typed error
        into.set(bounce.subarray(position - span.start, position - span.start + available));
        return available;
      } finally {
        bouncePool.release(bounce);
      }
    }
  }
}
