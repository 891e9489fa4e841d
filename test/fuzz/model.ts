// The in-memory model of the file the fuzzer checks the kernel against, and the comparison.
import * as fs from 'node:fs';
import { readBackDirect } from '../helpers/read-back';
import { firstDiff } from '../helpers/files';
import { MAX_FILE } from './config';

export class Model {
  /** Bytes past `size` are always zero: a hole or a regrown tail reads as zeros. */
  readonly bytes = Buffer.alloc(MAX_FILE);
  size = 0;

  write(position: number, data: Uint8Array): void {
    this.bytes.set(data, position);
    this.size = Math.max(this.size, position + data.byteLength);
  }

  truncate(size: number): void {
    if (size < this.size) this.bytes.fill(0, size, this.size);
    this.size = size;
  }

  allocate(position: number, length: number): void {
    this.size = Math.max(this.size, position + length);
  }

  /** What a read of `length` bytes at `position` returns. */
  read(position: number, length: number): Buffer {
    const n = Math.max(0, Math.min(length, this.size - position));
    return Buffer.from(this.bytes.subarray(position, position + n));
  }
}

/** Compares the file on disk (size and every byte) with `model`. */
export async function verifyFile(file: string, model: Model, where: string): Promise<void> {
  const statSize = fs.statSync(file).size;
  if (statSize !== model.size) throw new Error(`${where}: fs.statSync size ${statSize}, model size ${model.size}`);
  let onDisk: Buffer;
  try {
    onDisk = readBackDirect(file, model.size);
  } catch (err) {
    throw new Error(`${where}: reading the file back with O_DIRECT on a fresh fd failed: ${String(err)}`);
  }
  if (onDisk.byteLength !== model.size) throw new Error(`${where}: O_DIRECT read returned ${onDisk.byteLength} bytes, model size ${model.size}`);
  const diff = firstDiff(onDisk, model.bytes.subarray(0, model.size));
  if (diff >= 0) {
    let end = diff;
    while (end < model.size && onDisk[end] !== model.bytes[end]) end++;
    throw new Error(`${where}: file differs from the model at byte ${diff} (through ${end - 1}): ` +
      `file ${onDisk.subarray(diff, diff + 8).toString('hex')} model ${model.bytes.subarray(diff, diff + 8).toString('hex')}`);
  }
}
