// Argument checks for the public API: precise messages, thrown before any I/O.
import { fileURLToPath } from 'node:url';
import { OdirectError } from './errors';
import { isShrinkable } from './policies/ownership';

/** A bad argument: wrong type (ERR_INVALID_ARG_TYPE), value (ERR_INVALID_ARG_VALUE) or range (ERR_OUT_OF_RANGE). */
export class ArgumentError extends OdirectError {}

/** The kernel caps one read or write at MAX_RW_COUNT = INT_MAX & PAGE_MASK and returns a short count past it. */
export const MAX_IO_BYTES = 0x7ffff000;

function describe(value: unknown): string {
  if (value === undefined) return 'undefined (missing)';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return `an instance of ${value.constructor?.name ?? 'Object'}`;
  if (typeof value === 'string') return `a string (${JSON.stringify(value.slice(0, 40))})`;
  return `${typeof value} ${String(value)}`;
}

export function typeError(name: string, expected: string, value: unknown): ArgumentError {
  return new ArgumentError('ERR_INVALID_ARG_TYPE', `${name} must be ${expected}, got ${describe(value)}`);
}

export function rangeError(name: string, rule: string, value: unknown): ArgumentError {
  return new ArgumentError('ERR_OUT_OF_RANGE', `${name} must be ${rule}, got ${String(value)}`);
}

/** A byte position or size: a non-negative safe integer. */
export function checkPosition(value: unknown, name = 'position'): number {
  if (typeof value !== 'number') throw typeError(name, 'a number', value);
  if (!Number.isSafeInteger(value) || value < 0) {
    throw rangeError(name, 'a non-negative integer no larger than Number.MAX_SAFE_INTEGER', value);
  }
  return value;
}

/** A non-empty, attached Uint8Array (Buffer included). */
export function checkBytes(value: unknown, name = 'data'): Uint8Array {
  if (!(value instanceof Uint8Array)) throw typeError(name, 'a Uint8Array or Buffer', value);
  if (value.byteLength === 0) {
    throw new ArgumentError('ERR_INVALID_ARG_VALUE', `${name} is empty (0 bytes, or its ArrayBuffer was detached)`);
  }
  if (value.byteLength > MAX_IO_BYTES) throw rangeError(`${name}.byteLength`, `at most ${MAX_IO_BYTES}`, value.byteLength);
  if (isShrinkable(value)) {
    throw new ArgumentError('ERR_BUFFER_RESIZABLE', `${name} is a view of a resizable ArrayBuffer, which could shrink while the I/O is under way (docs/memory.md)`);
  }
  return value;
}

export function checkChunks(value: unknown, name = 'chunks'): Uint8Array[] {
  if (!Array.isArray(value)) throw typeError(name, 'an array of Uint8Array', value);
  if (value.length === 0) throw new ArgumentError('ERR_INVALID_ARG_VALUE', `${name} must not be empty`);
  if (value.length > 1024) throw rangeError(`${name}.length`, 'at most 1024 (IOV_MAX)', value.length);
  let total = 0;
  const chunks = value.map((chunk: unknown, i) => checkBytes(chunk, `${name}[${i}]`));
  for (const chunk of chunks) total += chunk.byteLength;
  if (total > MAX_IO_BYTES) throw rangeError(`total length of ${name}`, `at most ${MAX_IO_BYTES}`, total);
  return chunks;
}

export function checkEnd(position: number, length: number): void {
  if (position + length > Number.MAX_SAFE_INTEGER) {
    throw rangeError('position + length', 'no larger than Number.MAX_SAFE_INTEGER', position + length);
  }
}

export function checkOptions<T extends object>(value: unknown, name: string): Partial<T> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw typeError(name, 'an object', value);
  return value as Partial<T>;
}

export function checkBoolean(value: unknown, name: string): boolean | undefined {
  if (value === undefined || typeof value === 'boolean') return value;
  throw typeError(name, 'a boolean', value);
}

export function checkEnum<T extends string>(value: unknown, name: string, allowed: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T;
  throw new ArgumentError(
    'ERR_INVALID_ARG_VALUE',
    `${name} must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${describe(value)}`,
  );
}

/**
 * A path as node:fs takes it: a string, a `file:` URL, or a Buffer. A Buffer must hold valid
 * UTF-8, because the path goes to the addon as a string (a byte path that is not UTF-8 would
 * name a different file).
 */
export function checkPath(value: unknown, name = 'path'): string {
  if (value instanceof URL) {
    if (value.protocol !== 'file:') throw new ArgumentError('ERR_INVALID_URL_SCHEME', `${name} must be a file: URL, got ${value.protocol}`);
    try {
      value = fileURLToPath(value);
    } catch (err) {
      throw new ArgumentError('ERR_INVALID_FILE_URL_PATH', `${name}: ${(err as Error).message}`, { cause: err });
    }
  } else if (value instanceof Uint8Array) {
    const text = Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('utf8');
    if (!Buffer.from(text, 'utf8').equals(value)) {
      throw new ArgumentError('ERR_INVALID_ARG_VALUE', `${name} as a Buffer must be valid UTF-8 (odirect passes paths as strings)`);
    }
    value = text;
  }
  if (typeof value !== 'string') throw typeError(name, 'a string, a file: URL or a Buffer', value);
  if (value.length === 0) throw new ArgumentError('ERR_INVALID_ARG_VALUE', `${name} must not be empty`);
  if (value.includes('\0')) throw new ArgumentError('ERR_INVALID_ARG_VALUE', `${name} must not contain NUL bytes`);
  return value;
}
