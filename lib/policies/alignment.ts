// Direct I/O alignment (iomap: pos and length aligned to the logical block,
// every segment's address to the DMA alignment and its length to the block).
// Decides, per request, whether it can go straight to the kernel; in strict
// mode a request that cannot is refused before any I/O.
import { AlignmentError } from '../errors';
import { isMemoryAligned } from '../aligned';

export interface AlignmentRules {
  memAlign: number;
  offsetAlign: number;
}

export interface Misalignment {
  code: 'ERR_ALIGNMENT_MEMORY' | 'ERR_ALIGNMENT_OFFSET' | 'ERR_ALIGNMENT_LENGTH';
  message: string;
}

/** The first alignment rule this request breaks, or undefined if it can go direct as it is. */
export function findMisalignment(
  chunks: readonly Uint8Array[],
  position: number,
  rules: AlignmentRules,
): Misalignment | undefined {
  const { memAlign, offsetAlign } = rules;
  if (position % offsetAlign !== 0) {
    return { code: 'ERR_ALIGNMENT_OFFSET', message: `offset ${position} is not a multiple of ${offsetAlign}` };
  }
  for (let i = 0; i < chunks.length; i++) {
    const chunk = chunks[i]!;
    const which = chunks.length === 1 ? 'buffer' : `buffer ${i}`;
    if (chunk.byteLength % offsetAlign !== 0) {
      return {
        code: 'ERR_ALIGNMENT_LENGTH',
        message: `${which} length ${chunk.byteLength} is not a multiple of ${offsetAlign}`,
      };
    }
    if (!isMemoryAligned(chunk, memAlign)) {
      return { code: 'ERR_ALIGNMENT_MEMORY', message: `${which} address is not a multiple of ${memAlign}` };
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
