// pwritev2 / preadv2 with any RWF_* flags and several buffers.
#include <sys/uio.h>

#include "args.h"
#include "io.h"
#include "op.h"

namespace odirect {
namespace {

Op BuildVectored(const Napi::CallbackInfo& info, bool write) {
  const char* name = write ? "pwritev2" : "preadv2";
  RequireArgs(info, 4, name);
  int fd = ArgFd(info, 0);
  IoBuffers buffers = ArgBuffers(info, 1);
  int64_t offset = ArgOffset(info, 2, "position");
  int flags = static_cast<int>(ArgUint32(info, 3, "flags"));  // unknown bits: the kernel says EOPNOTSUPP
  Op op;
  op.syscall = name;
  auto iov = std::make_shared<std::vector<iovec>>(std::move(buffers.iov));
  op.run = [=]() -> long {
    ssize_t r = write ? pwritev2(fd, iov->data(), static_cast<int>(iov->size()), offset, flags)
                      : preadv2(fd, iov->data(), static_cast<int>(iov->size()), offset, flags);
    return SysResult(r);
  };
  op.Hold(std::move(buffers));
  return op;
}

Op BuildPwritev2(const Napi::CallbackInfo& info) { return BuildVectored(info, true); }
Op BuildPreadv2(const Napi::CallbackInfo& info) { return BuildVectored(info, false); }

}  // namespace

void InitIo(Napi::Env env, Napi::Object exports) {
  ExportOp(env, exports, "pwritev2", BuildPwritev2);  // (fd, buffers[], position, rwflags) → bytes
  ExportOp(env, exports, "preadv2", BuildPreadv2);
}

}  // namespace odirect
