// A separate addon (target odirect_shutdown in binding.gyp), loaded only by
// verify-atomic's crash cycles and the tests: the filesystem shutdown ioctl is
// not in the addon every user of odirect loads.
#include <napi.h>
#include <sys/ioctl.h>

#include <cstdint>

#include "args.h"
#include "op.h"

// Filesystem shutdown ioctl, shared by XFS (XFS_IOC_GOINGDOWN) and ext4 (EXT4_IOC_SHUTDOWN).
#ifndef ODIRECT_IOC_SHUTDOWN
#define ODIRECT_IOC_SHUTDOWN _IOR('X', 125, uint32_t)
#endif

namespace odirect {
namespace {

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

}  // namespace
}  // namespace odirect

static Napi::Object InitShutdown(Napi::Env env, Napi::Object exports) {
  odirect::ExportOp(env, exports, "fsShutdown", odirect::BuildShutdown);  // (fd, flags)
  return exports;
}

NODE_API_MODULE(odirect_shutdown, InitShutdown)
