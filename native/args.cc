#include "args.h"

#include <climits>
#include <cmath>
#include <limits>

namespace odirect {
namespace {

[[noreturn]] void ThrowType(Napi::Env env, const std::string& message) {
  throw Napi::TypeError::New(env, message);
}

[[noreturn]] void ThrowRange(Napi::Env env, const std::string& message) {
  throw Napi::RangeError::New(env, message);
}

constexpr double kMaxSafeInteger = 9007199254740991.0;

}  // namespace

void RequireArgs(const Napi::CallbackInfo& info, size_t count, const char* fn) {
  if (info.Length() < count) {
    ThrowType(info.Env(), std::string(fn) + " expects " + std::to_string(count) + " arguments, got " +
                              std::to_string(info.Length()));
  }
}

int ArgFd(const Napi::CallbackInfo& info, size_t index) {
  Napi::Value value = info[index];
  if (!value.IsNumber()) ThrowType(info.Env(), "fd must be a number");
  double fd = value.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(fd) || fd != std::floor(fd) || fd < 0 || fd > INT_MAX) {
    ThrowRange(info.Env(), "fd must be a non-negative 32-bit integer");
  }
  return static_cast<int>(fd);
}

int64_t ArgOffset(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Value value = info[index];
  if (value.IsBigInt()) {
    bool lossless = false;
    int64_t v = value.As<Napi::BigInt>().Int64Value(&lossless);
    if (!lossless || v < 0) ThrowRange(info.Env(), std::string(name) + " must be between 0 and 2^63-1");
    return v;
  }
  if (!value.IsNumber()) ThrowType(info.Env(), std::string(name) + " must be a number or bigint");
  double v = value.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(v) || v != std::floor(v)) ThrowRange(info.Env(), std::string(name) + " must be an integer");
  if (v < 0 || v > kMaxSafeInteger) {
    ThrowRange(info.Env(), std::string(name) + " must be between 0 and Number.MAX_SAFE_INTEGER");
  }
  return static_cast<int64_t>(v);
}

uint32_t ArgUint32(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Value value = info[index];
  if (!value.IsNumber()) ThrowType(info.Env(), std::string(name) + " must be a number");
  double v = value.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(v) || v != std::floor(v) || v < 0 || v > UINT32_MAX) {
    ThrowRange(info.Env(), std::string(name) + " must be an unsigned 32-bit integer");
  }
  return static_cast<uint32_t>(v);
}

int32_t ArgInt32(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Value value = info[index];
  if (!value.IsNumber()) ThrowType(info.Env(), std::string(name) + " must be a number");
  double v = value.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(v) || v != std::floor(v) || v < INT32_MIN || v > INT32_MAX) {
    ThrowRange(info.Env(), std::string(name) + " must be a 32-bit integer");
  }
  return static_cast<int32_t>(v);
}

std::string ArgPath(const Napi::CallbackInfo& info, size_t index) {
  Napi::Value value = info[index];
  if (!value.IsString()) ThrowType(info.Env(), "path must be a string");
  std::string path = value.As<Napi::String>().Utf8Value();
  if (path.empty()) ThrowType(info.Env(), "path must not be empty");
  if (path.find('\0') != std::string::npos) ThrowType(info.Env(), "path must not contain NUL bytes");
  return path;
}

// Raw N-API rather than Napi::ArrayBuffer: napi_get_arraybuffer_info refuses a
// SharedArrayBuffer, while the view's own info gives its data pointer either way.
bool GetViewSpan(Napi::Value value, uint8_t** data, size_t* length, bool* detached, bool* shared) {
  napi_env env = value.Env();
  napi_value buffer = nullptr;
  void* base = nullptr;
  size_t offset = 0;
  if (value.IsTypedArray()) {
    napi_typedarray_type type;
    size_t elements = 0;
    if (napi_get_typedarray_info(env, value, &type, &elements, &base, &buffer, &offset) != napi_ok) return false;
    switch (type) {  // napi_get_typedarray_info gives elements, not bytes
      case napi_int8_array:
      case napi_uint8_array:
      case napi_uint8_clamped_array: *length = elements; break;
      case napi_int16_array:
      case napi_uint16_array: *length = elements * 2; break;
      case napi_int32_array:
      case napi_uint32_array:
      case napi_float32_array: *length = elements * 4; break;
      case napi_float64_array:
      case napi_bigint64_array:
      case napi_biguint64_array: *length = elements * 8; break;
      default: *length = value.As<Napi::TypedArray>().ByteLength();
    }
  } else if (value.IsDataView()) {
    if (napi_get_dataview_info(env, value, length, &base, &buffer, &offset) != napi_ok) return false;
  } else {
    return false;
  }
  bool isArrayBuffer = false;
  napi_is_arraybuffer(env, buffer, &isArrayBuffer);
  *shared = !isArrayBuffer;  // a view's buffer is an ArrayBuffer or a SharedArrayBuffer
  bool isDetached = false;
  if (isArrayBuffer) napi_is_detached_arraybuffer(env, buffer, &isDetached);
  *detached = isDetached;
  *data = *detached ? nullptr : static_cast<uint8_t*>(base);
  return true;
}

void ViewSpan(Napi::Value view, uint8_t** data, size_t* length) {
  bool detached = false;
  bool shared = false;
  if (!GetViewSpan(view, data, length, &detached, &shared)) ThrowType(view.Env(), "expected an ArrayBufferView");
  if (detached) ThrowType(view.Env(), "buffer is detached");
}

Napi::TypedArray ArgView(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Value value = info[index];
  if (!value.IsTypedArray()) ThrowType(info.Env(), std::string(name) + " must be a Uint8Array or Buffer");
  uint8_t* data = nullptr;
  size_t length = 0;
  ViewSpan(value, &data, &length);
  return value.As<Napi::TypedArray>();
}

Napi::Error NotOwnedError(Napi::Env env) {
  Napi::Error error = Napi::TypeError::New(
      env, "an async op needs memory that cannot be detached or freed while the kernel uses it: a buffer from "
           "alignedBuffer()/registeredBuffer() or a SharedArrayBuffer view (docs/memory.md)");
  error.Set("code", Napi::String::New(env, "ERR_BUFFER_NOT_OWNED"));
  return error;
}

void IoBuffers::Clear() {
  iov.clear();
  keep.clear();
  holds.clear();
  total = 0;
  callerMemory = false;
}

IoBuffers ArgBuffers(const Napi::CallbackInfo& info, size_t index) {
  IoBuffers result;
  CollectBuffers(info.Env(), info[index], result);
  return result;
}

void CollectBuffers(Napi::Env env, Napi::Value buffers, IoBuffers& result) {
  result.Clear();
  if (!buffers.IsArray()) ThrowType(env, "buffers must be an array of ArrayBufferViews");
  Napi::Array array = buffers.As<Napi::Array>();
  uint32_t count = array.Length();
  if (count == 0) ThrowRange(env, "buffers must not be empty");
  if (count > IOV_MAX) ThrowRange(env, "at most " + std::to_string(IOV_MAX) + " buffers per call (IOV_MAX)");
  // Reused vectors (the io_uring slots) keep their capacity: no allocation per request.
  result.iov.reserve(count);
  for (uint32_t i = 0; i < count; i++) {
    Napi::Value value = array.Get(i);
    uint8_t* data = nullptr;
    size_t length = 0;
    bool detached = false;
    bool shared = false;
    auto which = [i] { return "buffers[" + std::to_string(i) + "]"; };
    if (!GetViewSpan(value, &data, &length, &detached, &shared)) ThrowType(env, which() + " must be an ArrayBufferView");
    if (detached) ThrowType(env, which() + " is detached");
    if (length == 0) ThrowRange(env, which() + " is empty");
    // The kernel caps one call at MAX_RW_COUNT (INT_MAX & PAGE_MASK); refuse sums
    // that cannot be represented rather than let ssize_t arithmetic wrap.
    if (length > static_cast<size_t>(SSIZE_MAX) - result.total) ThrowRange(env, "total buffer length too large");
    result.total += length;
    result.iov.push_back(iovec{data, length});
    MemoryHold hold;
    if (HoldOwned(data, length, &hold)) {
      result.holds.push_back(std::move(hold));
    } else if (shared) {
      result.keep.push_back(Napi::Persistent(value.As<Napi::Object>()));
    } else {
      result.callerMemory = true;
    }
  }
}

}  // namespace odirect
