// Direct I/O alignment (iomap: position and length aligned to the logical
// block, each segment's address to the DMA alignment and its length to the
// block). Decides, per request, how it can reach the kernel:
// - as it is;
// - 'bounce': position and total length are aligned but a buffer is not
//   (address or length): gathered into one aligned buffer, same position;
// - 'rmw': position or total length is not aligned: whole blocks must be
//   written (read-modify-write of the edge blocks).
// In strict mode any of these is an AlignmentError before any I/O.
import { AlignmentError } from '../errors';
import { addressAligned } from '../aligned';

export interface AlignmentRules {
  memAlign: number;
  offsetAlign: number;
}

export interface Misalignment {
  code: 'ERR_ALIGNMENT_MEMORY' | 'ERR_ALIGNMENT_OFFSET' | 'ERR_ALIGNMENT_LENGTH';
  message: string;
  remedy: 'bounce' | 'rmw';
}

/** How this request breaks the rules, or undefined if it can go direct as it is. */
export function findMisalignment(
  chunks: readonly Uint8Array[],
  position: number,
  length: number,
  rules: AlignmentRules,
): Misalignment | undefined {
  const { memAlign, offsetAlign } = rules;
  if (position % offsetAlign !== 0) {
    return { code: 'ERR_ALIGNMENT_OFFSET', remedy: 'rmw', message: `offset ${position} is not a multiple of ${offsetAlign}` };
  }
  if (length % offsetAlign !== 0) {
    return { code: 'ERR_ALIGNMENT_LENGTH', remedy: 'rmw', message: `length ${length} is not a multiple of ${offsetAlign}` };
  }
  for (let i = 0; i < chunks.length; i++) {
    const chunk = chunks[i]!;
    const which = chunks.length === 1 ? 'buffer' : `buffer ${i}`;
    if (chunk.byteLength % offsetAlign !== 0) {
      return {
        code: 'ERR_ALIGNMENT_LENGTH',
        remedy: 'bounce',
        message: `${which} length ${chunk.byteLength} is not a multiple of ${offsetAlign}`,
      };
    }
    if (!addressAligned(chunk, memAlign)) {
      return { code: 'ERR_ALIGNMENT_MEMORY', remedy: 'bounce', message: `${which} address is not a multiple of ${memAlign}` };
    }
  }
  return undefined;
}

export function alignmentError(m: Misalignment, op: 'write' | 'read', path: string, position: number, length: number) {
  return new AlignmentError(m.code, `direct ${op} of ${length} bytes at ${position} on ${path}: ${m.message} (alignment: 'strict')`, {
    path,
    position,
    length,
  });
}
