#pragma once
#include <napi.h>

namespace odirect {
void InitMemory(Napi::Env env, Napi::Object exports);
}
