/**
 * node:fs habits that need no file handle changes: URL and Buffer paths, and every error
 * thrown for bad input is an OdirectError (alignedBuffer's size limit, a missing argument
 * named as missing).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { ArgumentError, OdirectError, alignedBuffer, isMemoryAligned, open, probe } from '../lib/index';

const base = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'odirect-paths-'));
afterAll(() => fs.rmSync(base, { recursive: true, force: true }));

function thrown(fn: () => unknown): Error & { code?: string } {
  try {
    fn();
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('did not throw');
}

describe('alignedBuffer refusals are OdirectErrors', () => {
  it('2**40 bytes: ArgumentError ERR_OUT_OF_RANGE, naming the limit', () => {
    const err = thrown(() => alignedBuffer(2 ** 40));
    expect(err).toBeInstanceOf(ArgumentError);
    expect(err).toBeInstanceOf(OdirectError);
    expect(err.code).toBe('ERR_OUT_OF_RANGE');
    expect(err.message).toMatch(/^size must be at most \d+ with alignment 4096, got 1099511627776$/);
  });

  it('a missing size is named as missing, not "undefined undefined"', () => {
    const err = thrown(() => alignedBuffer(undefined as unknown as number));
    expect(err).toBeInstanceOf(ArgumentError);
    expect(err.message).toBe('size must be a number, got undefined (missing)');
  });
});

describe('isMemoryAligned refusals are ArgumentErrors, not the addon\'s TypeError/RangeError', () => {
  it('a string view, a non-power-of-two alignment, a string alignment', () => {
    const notView = thrown(() => isMemoryAligned('x' as unknown as Uint8Array, 4096));
    expect(notView).toBeInstanceOf(ArgumentError);
    expect(notView.code).toBe('ERR_INVALID_ARG_TYPE');
    const three = thrown(() => isMemoryAligned(Buffer.alloc(8), 3));
    expect(three).toBeInstanceOf(ArgumentError);
    expect(three.code).toBe('ERR_OUT_OF_RANGE');
    expect(thrown(() => isMemoryAligned(Buffer.alloc(8), '4096' as unknown as number))).toBeInstanceOf(ArgumentError);
  });

  it('still answers for good input: aligned, misaligned, no requirement', () => {
    const page = alignedBuffer(8192);
    expect(isMemoryAligned(page, 4096)).toBe(true);
    expect(isMemoryAligned(page.subarray(512), 4096)).toBe(false);
    expect(isMemoryAligned(page.subarray(512), 512)).toBe(true);
    expect(isMemoryAligned(page.subarray(1), 0)).toBe(true);
  });
});

describe('paths as node:fs takes them', () => {
  it('probe() takes a file: URL and a Buffer, and reports the same directory', async () => {
    const byString = await probe(base);
    const byUrl = await probe(pathToFileURL(base));
    const byBuffer = await probe(Buffer.from(base));
    expect(byUrl.path).toBe(base);
    expect(byBuffer.path).toBe(base);
    expect(byUrl).toEqual(byString);
    expect(byBuffer).toEqual(byString);
  });

  it('open() with a file: URL writes the file at that path', async () => {
    const target = path.join(base, 'by url');
    const file = await open(pathToFileURL(target) as unknown as string, { create: true });
    const page = alignedBuffer(4096).fill(0x5a);
    await file.write(page, 0);
    await file.close();
    expect(fs.readFileSync(target).equals(page)).toBe(true);
  });

  it('open() with a Buffer path reads the file at that path', async () => {
    const target = path.join(base, 'by-buffer');
    fs.writeFileSync(target, Buffer.alloc(4096, 0x33));
    const file = await open(Buffer.from(target) as unknown as string, { readOnly: true });
    const into = alignedBuffer(4096);
    expect(await file.read(into, 0)).toBe(4096);
    await file.close();
    expect(into.every((b) => b === 0x33)).toBe(true);
  });

  it('refuses an http: URL, a non-UTF-8 Buffer and a number, as ArgumentErrors before any I/O', async () => {
    await expect(probe(new URL('http://example.com/data'))).rejects.toMatchObject({ name: 'ArgumentError', code: 'ERR_INVALID_URL_SCHEME' });
    await expect(probe(Buffer.from([0x2f, 0xff, 0xfe]))).rejects.toMatchObject({
      name: 'ArgumentError',
      code: 'ERR_INVALID_ARG_VALUE',
      message: 'path as a Buffer must be valid UTF-8 (odirect passes paths as strings)',
    });
    await expect(probe(42 as unknown as string)).rejects.toMatchObject({
      name: 'ArgumentError',
      message: 'path must be a string, a file: URL or a Buffer, got number 42',
    });
    await expect(open(new URL('file://remotehost/x') as unknown as string)).rejects.toBeInstanceOf(ArgumentError);
  });
});
