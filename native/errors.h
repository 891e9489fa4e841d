// errno → JS Error with code, errno and syscall, like Node's own fs errors
// (but errno is the kernel's positive value, as in os.constants.errno).
#pragma once
#include <napi.h>

namespace odirect {

Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall);

}  // namespace odirect
