// io_uring: availability probe (the engine comes with its own issue).
#include <liburing.h>

#include "op.h"
#include "uring.h"

namespace odirect {
namespace {

// () → 0 when a ring can be set up here, else the errno io_uring_setup gave
// (ENOSYS: no kernel support; EPERM: io_uring_disabled or a seccomp filter).
Napi::Value UringSetupErrno(const Napi::CallbackInfo& info) {
  io_uring ring;
  int r = io_uring_queue_init(2, &ring, 0);
  if (r == 0) io_uring_queue_exit(&ring);
  return Napi::Number::New(info.Env(), r < 0 ? -r : 0);
}

}  // namespace

void InitUring(Napi::Env env, Napi::Object exports) {
  exports.Set("uringSetupErrno", Napi::Function::New(env, UringSetupErrno, "uringSetupErrno"));
}

}  // namespace odirect
