#include "errors.h"

#include "errno_names.h"

#include <cstring>
#include <string>

namespace odirect {

Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall) {
  const char* name = ErrnoName(err);  // "EINVAL", "EOPNOTSUPP"
  std::string code = name ? name : ("E" + std::to_string(err));
  std::string message = code + ": " + strerror(err) + ", " + syscall;
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  error.Set("errno", Napi::Number::New(env, err));
  error.Set("syscall", Napi::String::New(env, syscall));
  return error;
}

}  // namespace odirect
