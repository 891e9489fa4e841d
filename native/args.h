// Argument checks for every exported function: the JS layer validates too, but
// native code must never trust it (a wrong value here would be a crash or a
// write to the wrong place, not an exception).
#pragma once
#include <napi.h>
#include <sys/uio.h>

#include <cstdint>
#include <string>
#include <vector>

namespace odirect {

// The buffers of one vectored call, with references that keep them alive
// (and un-collected) until the kernel is done with them.
struct IoBuffers {
  std::vector<iovec> iov;
  std::vector<Napi::ObjectReference> keep;
  size_t total = 0;
};

void RequireArgs(const Napi::CallbackInfo& info, size_t count, const char* fn);
int ArgFd(const Napi::CallbackInfo& info, size_t index);
// A non-negative integer that fits in off_t: a Number that is a safe integer, or a BigInt.
int64_t ArgOffset(const Napi::CallbackInfo& info, size_t index, const char* name);
uint32_t ArgUint32(const Napi::CallbackInfo& info, size_t index, const char* name);
int32_t ArgInt32(const Napi::CallbackInfo& info, size_t index, const char* name);
std::string ArgPath(const Napi::CallbackInfo& info, size_t index);
// A TypedArray (Uint8Array, Buffer, …) whose buffer is attached.
Napi::TypedArray ArgView(const Napi::CallbackInfo& info, size_t index, const char* name);
void ViewSpan(Napi::Value view, uint8_t** data, size_t* length);
// An array of 1..IOV_MAX attached, non-empty ArrayBufferViews.
IoBuffers ArgBuffers(const Napi::CallbackInfo& info, size_t index);

}  // namespace odirect
