#pragma once
#include <napi.h>

namespace odirect {
void InitIo(Napi::Env env, Napi::Object exports);
}
