#pragma once
#include <napi.h>

namespace odirect {
void InitFile(Napi::Env env, Napi::Object exports);
}
