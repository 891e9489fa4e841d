// open, close and the calls that change or flush a file: fsync, fdatasync,
// fallocate, ftruncate, sync_file_range, posix_fadvise.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "compat.h"

#include "args.h"
#include "errors.h"
#include "file.h"
#include "op.h"

namespace odirect {
namespace {

Op BuildOpen(const Napi::CallbackInfo& info) {
  RequireArgs(info, 3, "open");
  std::string path = ArgPath(info, 0);
  // Any O_* bits pass through; O_CLOEXEC is always added (no fd leaks into children).
  int flags = ArgInt32(info, 1, "flags") | O_CLOEXEC;
  uint32_t mode = ArgUint32(info, 2, "mode");
  if (mode > 07777) throw Napi::RangeError::New(info.Env(), "mode must be at most 0o7777");
  Op op;
  op.syscall = "open";
  op.run = [=]() -> long { return SysResult(open(path.c_str(), flags, static_cast<mode_t>(mode))); };
  return op;
}

Op BuildClose(const Napi::CallbackInfo& info) {
  RequireArgs(info, 1, "close");
  int fd = ArgFd(info, 0);
  Op op;
  op.syscall = "close";
  op.run = [=]() -> long { return SysResult(close(fd)); };
  return op;
}

Op BuildFsync(const Napi::CallbackInfo& info) {
  RequireArgs(info, 1, "fsync");
  int fd = ArgFd(info, 0);
  Op op;
  op.syscall = "fsync";
  op.run = [=]() -> long { return SysResult(fsync(fd)); };
  return op;
}

Op BuildFdatasync(const Napi::CallbackInfo& info) {
  RequireArgs(info, 1, "fdatasync");
  int fd = ArgFd(info, 0);
  Op op;
  op.syscall = "fdatasync";
  op.run = [=]() -> long { return SysResult(fdatasync(fd)); };
  return op;
}

Op BuildFallocate(const Napi::CallbackInfo& info) {
  RequireArgs(info, 4, "fallocate");
  int fd = ArgFd(info, 0);
  int mode = ArgInt32(info, 1, "mode");
  int64_t offset = ArgOffset(info, 2, "offset");
  int64_t length = ArgOffset(info, 3, "length");
  if (length == 0) throw Napi::RangeError::New(info.Env(), "length must be greater than 0");
  Op op;
  op.syscall = "fallocate";
  op.run = [=]() -> long { return SysResult(fallocate(fd, mode, offset, length)); };
  return op;
}

Op BuildFtruncate(const Napi::CallbackInfo& info) {
  RequireArgs(info, 2, "ftruncate");
  int fd = ArgFd(info, 0);
  int64_t size = ArgOffset(info, 1, "size");
  Op op;
  op.syscall = "ftruncate";
  op.run = [=]() -> long { return SysResult(ftruncate(fd, size)); };
  return op;
}

Op BuildSyncFileRange(const Napi::CallbackInfo& info) {
  RequireArgs(info, 4, "syncFileRange");
  int fd = ArgFd(info, 0);
  int64_t offset = ArgOffset(info, 1, "offset");
  int64_t nbytes = ArgOffset(info, 2, "nbytes");  // 0 means "to the end of the file"
  uint32_t flags = ArgUint32(info, 3, "flags");
  Op op;
  op.syscall = "sync_file_range";
  op.run = [=]() -> long { return SysResult(sync_file_range(fd, offset, nbytes, flags)); };
  return op;
}

Op BuildFadvise(const Napi::CallbackInfo& info) {
  RequireArgs(info, 4, "fadvise");
  int fd = ArgFd(info, 0);
  int64_t offset = ArgOffset(info, 1, "offset");
  int64_t length = ArgOffset(info, 2, "length");  // 0 means "to the end of the file"
  int advice = ArgInt32(info, 3, "advice");
  Op op;
  op.syscall = "posix_fadvise";
  // posix_fadvise returns the error number instead of setting errno.
  op.run = [=]() -> long { return -static_cast<long>(posix_fadvise(fd, offset, length, advice)); };
  return op;
}

// (fd on the filesystem, flags 0|1|2) — XFS_IOC_GOINGDOWN / EXT4_IOC_SHUTDOWN.
// A thin wrapper: which filesystem may be shut down is decided (and checked)
// in TypeScript, which only ever aims it at a scratch filesystem it made.
Op BuildShutdown(const Napi::CallbackInfo& info) {
  RequireArgs(info, 2, "fsShutdown");
  int fd = ArgFd(info, 0);
  uint32_t flags = ArgUint32(info, 1, "flags");
  if (flags > 2) throw Napi::RangeError::New(info.Env(), "flags must be 0 (default), 1 (logflush) or 2 (nologflush)");
  Op op;
  op.syscall = "ioctl";
  op.run = [=]() -> long {
    uint32_t value = flags;
    return SysResult(ioctl(fd, ODIRECT_IOC_SHUTDOWN, &value));
  };
  return op;
}

// (fd) points fd at /dev/null (dup3), closing what it pointed at but keeping the
// number taken: an op still in flight on that number, or issued later, then hits
// /dev/null rather than whatever file the next open() would get that number.
// For interrupt paths that must let go of files (a busy mount) while I/O may run.
Napi::Value FdToDevNull(const Napi::CallbackInfo& info) {
  RequireArgs(info, 1, "fdToDevNull");
  int fd = ArgFd(info, 0);
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null < 0) throw ErrnoError(info.Env(), errno, "open");
  int r = fcntl(fd, F_GETFD) < 0 ? -1 : dup3(null, fd, O_CLOEXEC);
  int err = errno;
  close(null);
  if (r < 0) throw ErrnoError(info.Env(), err, "dup3");
  return info.Env().Undefined();
}

}  // namespace

void InitFile(Napi::Env env, Napi::Object exports) {
  exports.Set("fdToDevNull", Napi::Function::New(env, FdToDevNull, "fdToDevNull"));
  ExportOp(env, exports, "open", BuildOpen);  // (path, flags, mode) → fd
  ExportOp(env, exports, "close", BuildClose);
  ExportOp(env, exports, "fsync", BuildFsync);
  ExportOp(env, exports, "fdatasync", BuildFdatasync);
  ExportOp(env, exports, "fallocate", BuildFallocate);  // (fd, mode, offset, length)
  ExportOp(env, exports, "ftruncate", BuildFtruncate);  // (fd, size)
  ExportOp(env, exports, "syncFileRange", BuildSyncFileRange);  // (fd, offset, nbytes, flags)
  ExportOp(env, exports, "fadvise", BuildFadvise);  // (fd, offset, length, advice)
  ExportOp(env, exports, "fsShutdown", BuildShutdown);  // (fd, flags)
}

}  // namespace odirect
