#include "op.h"

#include <cerrno>
#include <new>
#include <string>

#include "errors.h"

namespace odirect {
namespace {

Napi::Value Settle(Napi::Env env, const Op& op, long r) {
  if (r < 0) throw ErrnoError(env, static_cast<int>(-r), op.syscall);
  if (op.result) return op.result(env, r);
  return Napi::Number::New(env, static_cast<double>(r));
}

// The syscall's result, with an allocation failure as ENOMEM: no C++ exception
// may leave an op (uncaught on the pool thread it aborts the process; in the
// sync form it would too, as node-addon-api only catches Napi::Error).
long RunCaught(const Op& op) {
  try {
    return op.run();
  } catch (const std::bad_alloc&) {
    return -ENOMEM;
  } catch (...) {
    return -EFAULT;
  }
}

class OpWorker : public Napi::AsyncWorker {
 public:
  OpWorker(Napi::Env env, Op op)
      : Napi::AsyncWorker(env, op.syscall), op_(std::move(op)), deferred_(Napi::Promise::Deferred::New(env)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override { result_ = RunCaught(op_); }

  void OnOK() override {
    Napi::Env env = Env();
    try {
      deferred_.Resolve(Settle(env, op_, result_));
    } catch (const Napi::Error& error) {
      deferred_.Reject(error.Value());
    }
    Release();
  }

  // AsyncWorker calls this instead of OnOK when SetError was used: every path settles.
  void OnError(const Napi::Error& error) override {
    deferred_.Reject(error.Value());
    Release();
  }

 private:
  void Release() {
    op_.keep.clear();
    op_.holds.clear();
  }

  Op op_;
  Napi::Promise::Deferred deferred_;
  long result_ = 0;
};

}  // namespace

Napi::Value RunSync(Napi::Env env, Op op) { return Settle(env, op, RunCaught(op)); }

Napi::Value RunAsync(Napi::Env env, Op op) {
  // Off the JS thread the op must own every byte it touches: JS runs meanwhile
  // and could detach, shrink or free a plain ArrayBuffer (docs/memory.md).
  if (op.callerMemory) throw NotOwnedError(env);
  auto* worker = new OpWorker(env, std::move(op));  // deletes itself after OnOK/OnError
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

void ExportOp(Napi::Env env, Napi::Object exports, const char* name, OpBuilder build) {
  // The builder pointer rides along as the function's data, so there is one
  // trampoline per mode rather than one per syscall.
  auto* data = reinterpret_cast<void*>(build);
  exports.Set(name, Napi::Function::New(
                        env,
                        [](const Napi::CallbackInfo& info) -> Napi::Value {
                          auto builder = reinterpret_cast<OpBuilder>(info.Data());
                          return RunAsync(info.Env(), builder(info));
                        },
                        name, data));
  std::string sync = std::string(name) + "Sync";
  exports.Set(sync, Napi::Function::New(
                        env,
                        [](const Napi::CallbackInfo& info) -> Napi::Value {
                          auto builder = reinterpret_cast<OpBuilder>(info.Data());
                          return RunSync(info.Env(), builder(info));
                        },
                        sync, data));
}

}  // namespace odirect
