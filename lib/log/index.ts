export { openLog, DurableLog, LogCorruptError } from './log';
export type { LogOptions, LogStats, LogRecord, ReplayOptions } from './log';
