#include "errors.h"

#include <cstring>
#include <string>

namespace odirect {

Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall) {
  // strerrorname_np (glibc 2.32) gives the symbolic name: "EINVAL", "EOPNOTSUPP".
  const char* name = strerrorname_np(err);
  std::string code = name ? name : ("E" + std::to_string(err));
  std::string message = code + ": " + strerror(err) + ", " + syscall;
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  error.Set("errno", Napi::Number::New(env, err));
  error.Set("syscall", Napi::String::New(env, syscall));
  return error;
}

}  // namespace odirect
