// odirect: real Linux direct I/O for Node.js.
export { probe } from './probe';
export { open, DirectFile } from './file';
export { alignedBuffer, isMemoryAligned } from './aligned';
export { registeredBuffer, releaseBuffer } from './registered';
export { OdirectError, AtomicWriteError, AlignmentError, UnsupportedError } from './errors';
export { ArgumentError } from './validate';
export { AbortError, type DirectFileStat } from './habits';
export type { ReadOptions } from './file';
export { createReadStream, DirectReadStream } from './streams/read-stream';
export type { ReadStreamOptions } from './streams/read-stream';
export { createWriteStream, DirectWriteStream } from './streams/write-stream';
export type { WriteStreamOptions, FallbackInfo } from './streams/write-stream';
export { readFile, writeFile } from './streams/whole-file';
export type { ReadFileOptions, WriteFileOptions } from './streams/whole-file';
export { replaceFile } from './replace';
export type { ReplaceFileOptions } from './replace';
export { openLog, DurableLog, LogCorruptError, type LogOptions, type LogStats, type LogRecord, type ReplayOptions } from './log';
export type {
  Capabilities,
  DirectIoCapabilities,
  AtomicCapabilities,
  DeviceInfo,
  OpenOptions,
  WriteOptions,
  WriteResult,
  FileStats,
  EngineName,
  AlignmentMode,
  FallbackMode,
  CacheMode,
} from './types';
