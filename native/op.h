// One syscall, described once and run either inline (the *Sync export) or on
// libuv's thread pool (the Promise export). `run` returns the syscall's result
// or -errno; `result` turns a success into a JS value on the JS thread.
#pragma once
#include <napi.h>

#include <functional>
#include <memory>
#include <vector>

#include "args.h"

namespace odirect {

struct Op {
  const char* syscall = "";
  // Runs the syscall; may throw std::bad_alloc, which settles the op with ENOMEM.
  std::function<long()> run;
  std::function<Napi::Value(Napi::Env, long)> result;  // default: the number itself
  std::vector<Napi::ObjectReference> keep;             // alive until the op settles
  std::vector<MemoryHold> holds;                       // odirect memory, valid until the op settles
  bool callerMemory = false;                           // JS-detachable memory: sync form only
  void Hold(IoBuffers&& buffers) {
    keep = std::move(buffers.keep);
    holds = std::move(buffers.holds);
    callerMemory = buffers.callerMemory;
  }
};

// Wraps a raw syscall that returns -1 and sets errno.
inline long SysResult(long r) { return r < 0 ? -errno : r; }

Napi::Value RunSync(Napi::Env env, Op op);
Napi::Value RunAsync(Napi::Env env, Op op);

using OpBuilder = Op (*)(const Napi::CallbackInfo&);

// Exports `name` (Promise, thread pool) and `nameSync` for one builder.
void ExportOp(Napi::Env env, Napi::Object exports, const char* name, OpBuilder build);

}  // namespace odirect
