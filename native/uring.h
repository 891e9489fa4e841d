#pragma once
#include <napi.h>

namespace odirect {
void InitUring(Napi::Env env, Napi::Object exports);
}
