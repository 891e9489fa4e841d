// Alignment arithmetic (lib/policies/alignment.ts, lib/policies/rmw.ts), without a kernel.
import { describe, expect, it } from 'vitest';
import { alignedBuffer } from '../../lib/aligned';
import { findMisalignment } from '../../lib/policies/alignment';
import { alignedSpan, gather, partialBlocks } from '../../lib/policies/rmw';

const rules = { memAlign: 512, offsetAlign: 512 };
const at = (length: number, misalign = 0) => alignedBuffer(length + 4096).subarray(misalign, misalign + length);

describe('findMisalignment', () => {
  it.each([
    ['aligned', [at(4096)], 0, undefined],
    ['offset first: it needs a read-modify-write', [at(4096, 1)], 100, { code: 'ERR_ALIGNMENT_OFFSET', remedy: 'rmw' }],
    ['total length', [at(1000)], 0, { code: 'ERR_ALIGNMENT_LENGTH', remedy: 'rmw' }],
    ['a chunk length with an aligned total: bounce', [at(500), at(524)], 0, { code: 'ERR_ALIGNMENT_LENGTH', remedy: 'bounce' }],
    ['memory address', [at(512, 8)], 0, { code: 'ERR_ALIGNMENT_MEMORY', remedy: 'bounce' }],
    ['memory address of the second chunk', [at(512), at(512, 64)], 0, { code: 'ERR_ALIGNMENT_MEMORY', remedy: 'bounce' }],
  ] as const)('%s', (_name, chunks, position, expected) => {
    const length = chunks.reduce((n, c) => n + c.byteLength, 0);
    const m = findMisalignment(chunks, position, length, rules);
    if (expected === undefined) expect(m).toBeUndefined();
    else expect(m).toMatchObject(expected);
  });

  it('names the chunk that breaks the rule', () => {
    expect(findMisalignment([at(512), at(512, 64)], 0, 1024, rules)?.message).toBe('buffer 1 address is not a multiple of 512');
    expect(findMisalignment([at(512, 64)], 0, 512, rules)?.message).toBe('buffer address is not a multiple of 512');
  });
});

describe('alignedSpan and partialBlocks', () => {
  it.each([
    // position, length, align → span, partial blocks to read first
    [0, 512, 512, { start: 0, end: 512 }, []],
    [1000, 1000, 512, { start: 512, end: 2048 }, [512, 1536]],
    [100, 10, 512, { start: 0, end: 512 }, [0]],
    [512, 100, 512, { start: 512, end: 1024 }, [512]],
    [100, 412, 512, { start: 0, end: 512 }, [0]],
    [4096 + 90, 10, 4096, { start: 4096, end: 8192 }, [4096]],
    [4000, 8192, 4096, { start: 0, end: 12288 }, [0, 8192]],
  ])('%i + %i at %i-byte blocks', (position, length, align, span, partial) => {
    expect(alignedSpan(position, length, align)).toEqual(span);
    expect(partialBlocks(span, position, length, align)).toEqual(partial);
  });

  it('gather lays the chunks one after another from the offset given', () => {
    const target = Buffer.alloc(8, 0);
    gather([Buffer.from([1, 2]), Buffer.from([3])], target, 2);
    expect([...target]).toEqual([0, 0, 1, 2, 3, 0, 0, 0]);
  });
});
