// Argument checks for every exported function: the JS layer validates too, but
// native code must never trust it (a wrong value here would be a crash or a
// write to the wrong place, not an exception).
#pragma once
#include <napi.h>
#include <sys/uio.h>

#include <cstdint>
#include <string>
#include <vector>

#include "owned.h"

namespace odirect {

// The buffers of one vectored call, with what keeps their memory valid until
// the kernel is done with it (docs/memory.md):
// - odirect's own blocks: a reference on the block (holds), whatever JS does;
// - SharedArrayBuffer views: cannot be detached or shrunk, so a reference that
//   stops collection (keep) is enough;
// - any other ArrayBuffer can be detached (transfer), resized or collected by
//   JS while the kernel uses it: callerMemory is set, and only the sync forms,
//   during which no JS runs, accept it.
struct IoBuffers {
  std::vector<iovec> iov;
  std::vector<Napi::ObjectReference> keep;
  std::vector<MemoryHold> holds;
  size_t total = 0;
  bool callerMemory = false;
  // Empties it, dropping the holds and references (capacity is kept).
  void Clear();
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
// Data pointer and byte length of any ArrayBufferView over an ArrayBuffer or a
// SharedArrayBuffer; false when the value is not a view. A detached view has no data.
bool GetViewSpan(Napi::Value value, uint8_t** data, size_t* length, bool* detached, bool* shared);
// An array of 1..IOV_MAX attached, non-empty ArrayBufferViews.
IoBuffers ArgBuffers(const Napi::CallbackInfo& info, size_t index);
// The same into `into` (cleared first, its vectors reused), from any value.
// On a throw `into` may hold part of the buffers: the caller clears it.
void CollectBuffers(Napi::Env env, Napi::Value buffers, IoBuffers& into);
// The TypeError (code ERR_BUFFER_NOT_OWNED) an async op gives for callerMemory.
Napi::Error NotOwnedError(Napi::Env env);

}  // namespace odirect
