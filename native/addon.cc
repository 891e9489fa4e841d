// Module entry: registers each file's exports and the kernel constants the
// TypeScript layer composes flags from (values as this build saw them, with
// compat.h filling in what the system headers lack).
#include <fcntl.h>
#include <napi.h>
#include <sys/mman.h>

#include "args.h"
#include "compat.h"
#include "errors.h"
#include "file.h"
#include "io.h"
#include "memory.h"
#include "owned.h"
#include "stat.h"
#include "uring.h"

namespace odirect {
namespace {

Napi::Object Constants(Napi::Env env) {
  Napi::Object c = Napi::Object::New(env);
  auto set = [&](const char* name, double value) { c.Set(name, Napi::Number::New(env, value)); };
  set("O_RDONLY", O_RDONLY);
  set("O_WRONLY", O_WRONLY);
  set("O_RDWR", O_RDWR);
  set("O_CREAT", O_CREAT);
  set("O_EXCL", O_EXCL);
  set("O_TRUNC", O_TRUNC);
  set("O_DIRECT", O_DIRECT);
  set("O_DSYNC", O_DSYNC);
  set("O_SYNC", O_SYNC);
  set("O_APPEND", O_APPEND);
  set("O_NOFOLLOW", O_NOFOLLOW);
  set("O_DIRECTORY", O_DIRECTORY);
  set("RWF_HIPRI", RWF_HIPRI);
  set("RWF_DSYNC", RWF_DSYNC);
  set("RWF_SYNC", RWF_SYNC);
  set("RWF_NOWAIT", RWF_NOWAIT);
  set("RWF_APPEND", RWF_APPEND);
  set("RWF_NOAPPEND", RWF_NOAPPEND);
  set("RWF_ATOMIC", RWF_ATOMIC);
  set("RWF_DONTCACHE", RWF_DONTCACHE);
  set("FALLOC_FL_KEEP_SIZE", FALLOC_FL_KEEP_SIZE);
  set("FALLOC_FL_PUNCH_HOLE", FALLOC_FL_PUNCH_HOLE);
  set("FALLOC_FL_ZERO_RANGE", FALLOC_FL_ZERO_RANGE);
  set("SYNC_FILE_RANGE_WAIT_BEFORE", SYNC_FILE_RANGE_WAIT_BEFORE);
  set("SYNC_FILE_RANGE_WRITE", SYNC_FILE_RANGE_WRITE);
  set("SYNC_FILE_RANGE_WAIT_AFTER", SYNC_FILE_RANGE_WAIT_AFTER);
  set("POSIX_FADV_NORMAL", POSIX_FADV_NORMAL);
  set("POSIX_FADV_SEQUENTIAL", POSIX_FADV_SEQUENTIAL);
  set("POSIX_FADV_RANDOM", POSIX_FADV_RANDOM);
  set("POSIX_FADV_WILLNEED", POSIX_FADV_WILLNEED);
  set("POSIX_FADV_DONTNEED", POSIX_FADV_DONTNEED);
  set("STATX_ATTR_DAX", STATX_ATTR_DAX);
  set("STATX_ATTR_WRITE_ATOMIC", STATX_ATTR_WRITE_ATOMIC);
  set("STATX_DIOALIGN", STATX_DIOALIGN);
  set("STATX_WRITE_ATOMIC", STATX_WRITE_ATOMIC);
  set("STATX_DIO_READ_ALIGN", STATX_DIO_READ_ALIGN);
  return c;
}

// (errno, syscall) → the same Error a failed syscall gives; the io_uring
// engine builds its errors from CQE results with it.
Napi::Value MakeErrnoError(const Napi::CallbackInfo& info) {
  RequireArgs(info, 2, "errnoError");
  uint32_t err = ArgUint32(info, 0, "errno");
  if (err == 0 || err > 4095) throw Napi::RangeError::New(info.Env(), "errno must be from 1 to 4095");
  if (!info[1].IsString()) throw Napi::TypeError::New(info.Env(), "syscall must be a string");
  std::string syscall = info[1].As<Napi::String>().Utf8Value();
  return ErrnoError(info.Env(), static_cast<int>(err), syscall.c_str()).Value();
}

}  // namespace
}  // namespace odirect

// NODE_API_MODULE pastes its argument into a name, so the init function is unqualified.
static Napi::Object InitOdirect(Napi::Env env, Napi::Object exports) {
  using namespace odirect;
  InitFile(env, exports);
  InitIo(env, exports);
  InitStat(env, exports);
  InitMemory(env, exports);
  InitOwned(env, exports);
  InitUring(env, exports);
  exports.Set("constants", Constants(env));
  exports.Set("errnoError", Napi::Function::New(env, MakeErrnoError, "errnoError"));
  return exports;
}

NODE_API_MODULE(odirect, InitOdirect)
