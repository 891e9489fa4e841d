// The public methods' options, checked and resolved before any I/O.
import { C } from './native';
import type { AlignmentMode, EngineName, FallbackMode, CacheMode, OpenOptions, WriteOptions } from './types';
import { checkSignal } from './habits';
import { ArgumentError, checkBoolean, checkEnum, checkOptions, checkPath, rangeError, typeError } from './validate';

export interface ResolvedOpen {
  path: string;
  flags: number;
  mode: number;
  direct: boolean;
  readOnly: boolean;
  dsync: boolean;
  engine: 'auto' | EngineName;
  alignment: AlignmentMode;
  fallback: FallbackMode;
  /** Ring size asked for (io_uring engine; the first open on a thread decides). */
  queueDepth: number | undefined;
}

export function resolveOpenOptions(path: unknown, options: unknown): ResolvedOpen {
  const p = checkPath(path);
  const o = checkOptions<OpenOptions>(options, 'options');
  const create = checkBoolean(o.create, 'options.create') ?? false;
  const exclusive = checkBoolean(o.exclusive, 'options.exclusive') ?? false;
  const truncate = checkBoolean(o.truncate, 'options.truncate') ?? false;
  const readOnly = checkBoolean(o.readOnly, 'options.readOnly') ?? false;
  const direct = checkBoolean(o.direct, 'options.direct') ?? true;
  const dsync = checkBoolean(o.dsync, 'options.dsync') ?? false;
  const engine = checkEnum(o.engine, 'options.engine', ['auto', 'uring', 'threadpool'] as const) ?? 'auto';
  const alignment = checkEnum(o.alignment, 'options.alignment', ['bounce', 'strict'] as const) ?? 'bounce';
  const fallback = checkEnum(o.fallback, 'options.fallback', ['buffered', 'error'] as const) ?? 'buffered';
  const mode = o.mode === undefined ? 0o644 : o.mode;
  if (typeof mode !== 'number') throw typeError('options.mode', 'a number', mode);
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) throw rangeError('options.mode', 'an integer from 0 to 0o7777', mode);
  if (o.queueDepth !== undefined) {
    if (typeof o.queueDepth !== 'number') throw typeError('options.queueDepth', 'a number', o.queueDepth);
    if (!Number.isInteger(o.queueDepth) || o.queueDepth < 1 || o.queueDepth > 4096) {
      throw rangeError('options.queueDepth', 'an integer from 1 to 4096', o.queueDepth);
    }
  }
  if (readOnly && (truncate || exclusive)) {
    throw new ArgumentError('ERR_INVALID_ARG_VALUE', 'options.readOnly cannot be combined with truncate or exclusive');
  }
  if (exclusive && !create) throw new ArgumentError('ERR_INVALID_ARG_VALUE', 'options.exclusive needs options.create');
  let flags = readOnly ? C.O_RDONLY : C.O_RDWR;
  if (create) flags |= C.O_CREAT;
  if (exclusive) flags |= C.O_EXCL;
  if (truncate) flags |= C.O_TRUNC;
  if (dsync) flags |= C.O_DSYNC;
  return { path: p, flags, mode, direct, readOnly, dsync, engine, alignment, fallback, queueDepth: o.queueDepth };
}

export interface ResolvedWrite {
  atomic: boolean;
  cache: CacheMode;
  dsync: boolean;
  signal: AbortSignal | undefined;
}

/** No options: the defaults, made once (every plain write comes here). */
const DEFAULT_WRITE: ResolvedWrite = Object.freeze({ atomic: false, cache: 'default', dsync: false, signal: undefined });

export function resolveWriteOptions(options: unknown): ResolvedWrite {
  if (options === undefined) return DEFAULT_WRITE;
  const o = checkOptions<WriteOptions>(options, 'options');
  const atomic = checkBoolean(o.atomic, 'options.atomic') ?? false;
  const cache = checkEnum(o.cache, 'options.cache', ['default', 'dontcache', 'writethrough'] as const) ?? 'default';
  const dsync = checkBoolean(o.dsync, 'options.dsync') ?? false;
  const signal = checkSignal(o.signal, 'options.signal');
  return { atomic, cache, dsync, signal };
}
