// Read-modify-write for direct writes whose offset or length is not aligned:
// widen to whole blocks, read the partial head and tail blocks with direct
// reads, lay the caller's bytes over them, write the whole span direct.
// The caller holds an exclusive range lock over the span (mechanisms/range-lock.ts).

export interface Span {
  start: number;
  end: number;
}

/** The block-aligned span that covers [position, position+length). */
export function alignedSpan(position: number, length: number, align: number): Span {
  const start = position - (position % align);
  const last = position + length;
  const end = last % align === 0 ? last : last + (align - (last % align));
  return { start, end };
}

/** The blocks at the edges that the write covers only in part: they must be read first. */
export function partialBlocks(span: Span, position: number, length: number, align: number): number[] {
  const blocks: number[] = [];
  if (position !== span.start) blocks.push(span.start);
  const tail = span.end - align;
  if (position + length !== span.end && !blocks.includes(tail)) blocks.push(tail);
  return blocks;
}

/** Copies `chunks` into `target` starting at byte `at`. */
export function gather(chunks: readonly Uint8Array[], target: Uint8Array, at: number): void {
  for (const chunk of chunks) {
    target.set(chunk, at);
    at += chunk.byteLength;
  }
}
