// odirect: real Linux direct I/O for Node.js.
export { probe } from './probe';
export { open, DirectFile } from './file';
export { alignedBuffer, isMemoryAligned } from './aligned';
export { registeredBuffer, releaseBuffer } from './registered';
export { OdirectError, AtomicWriteError, AlignmentError, UnsupportedError } from './errors';
export { ArgumentError } from './validate';
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
