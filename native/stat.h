#pragma once
#include <napi.h>

namespace odirect {
void InitStat(Napi::Env env, Napi::Object exports);
}
