// One error hierarchy. `code` is the errno name (EINVAL, EOPNOTSUPP, …) when
// the kernel said no, or a project code (ERR_ATOMIC_UNALIGNED, …) when odirect
// refused before any I/O. `errno` is the kernel's positive value.

export interface ErrorContext {
  errno?: number;
  syscall?: string;
  path?: string;
  position?: number;
  length?: number;
  cause?: unknown;
}

export class OdirectError extends Error {
  readonly code: string;
  readonly errno?: number;
  readonly syscall?: string;
  readonly path?: string;
  readonly position?: number;
  readonly length?: number;

  constructor(code: string, message: string, context: ErrorContext = {}) {
    super(message, context.cause === undefined ? undefined : { cause: context.cause });
    this.name = new.target.name;
    this.code = code;
    if (context.errno !== undefined) this.errno = context.errno;
    if (context.syscall !== undefined) this.syscall = context.syscall;
    if (context.path !== undefined) this.path = context.path;
    if (context.position !== undefined) this.position = context.position;
    if (context.length !== undefined) this.length = context.length;
  }
}

/** An atomic write that was refused before I/O, or that the kernel refused or cut short. */
export class AtomicWriteError extends OdirectError {}

/** A request that breaks the file's direct-I/O alignment rules (strict mode). */
export class AlignmentError extends OdirectError {}

/** The filesystem, device or kernel cannot do what was asked. */
export class UnsupportedError extends OdirectError {}

interface SystemError {
  code: string;
  errno: number;
  syscall: string;
  message: string;
}

export function isSystemError(err: unknown): err is SystemError {
  return (
    err instanceof Error &&
    typeof (err as Partial<SystemError>).code === 'string' &&
    typeof (err as Partial<SystemError>).errno === 'number'
  );
}

/**
 * Wraps an errno from the native layer or from node:fs with where it
 * happened. Errors that are not from a syscall (TypeError from a native
 * argument check) pass through.
 */
export function withContext(err: unknown, context: ErrorContext, Kind: typeof OdirectError = OdirectError): unknown {
  if (err instanceof OdirectError || !isSystemError(err)) return err;
  // node:fs messages already name the path ("ENOENT: …, chmod '/a/b'").
  const named = context.path !== undefined && err.message.includes(`'${context.path}'`);
  const where = [
    named ? undefined : context.path,
    context.position !== undefined ? `at ${context.position}` : undefined,
    context.length !== undefined ? `(${context.length} bytes)` : undefined,
  ]
    .filter(Boolean)
    .join(' ');
  return new Kind(err.code, where ? `${err.message}: ${where}` : err.message, {
    ...context,
    // libuv (node:fs) gives errno negated (-2 for ENOENT); the addon, as the kernel's positive value.
    errno: Math.abs(err.errno),
    syscall: err.syscall,
    cause: err,
  });
}

/** A node:fs call whose failure becomes an OdirectError naming `path`, the node error kept as `cause`. */
export function fsCall<T>(call: Promise<T>, path: string): Promise<T> {
  return call.catch((err: unknown) => {
    throw withContext(err, { path });
  });
}
