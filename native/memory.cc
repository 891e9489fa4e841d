// Aligned memory lives in ordinary ArrayBuffers (V8's sandbox refuses external
// memory): JS over-allocates and asks here how far the data is from the next
// aligned address. Plus page-cache residency via mincore, for tests and bench.
#include <sys/mman.h>
#include <unistd.h>

#include <vector>

#include "args.h"
#include "memory.h"
#include "op.h"

namespace odirect {
namespace {

bool IsPowerOfTwo(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

// (view, alignment) → view's address modulo alignment.
Napi::Value AddressModulo(const Napi::CallbackInfo& info) {
  RequireArgs(info, 2, "addressModulo");
  uint8_t* data = nullptr;
  size_t length = 0;
  if (!info[0].IsTypedArray() && !info[0].IsDataView()) {
    throw Napi::TypeError::New(info.Env(), "view must be an ArrayBufferView");
  }
  ViewSpan(info[0], &data, &length);
  uint32_t alignment = ArgUint32(info, 1, "alignment");
  if (!IsPowerOfTwo(alignment)) throw Napi::RangeError::New(info.Env(), "alignment must be a power of two");
  return Napi::Number::New(info.Env(), static_cast<double>(reinterpret_cast<uintptr_t>(data) & (alignment - 1)));
}

// (fd, offset, length) → pages of that range now in the page cache. Maps the
// range read-only and shared (mapping does not fault pages in), asks mincore.
Op BuildResidentPages(const Napi::CallbackInfo& info) {
  RequireArgs(info, 3, "residentPages");
  int fd = ArgFd(info, 0);
  int64_t offset = ArgOffset(info, 1, "offset");
  int64_t length = ArgOffset(info, 2, "length");
  if (length == 0) throw Napi::RangeError::New(info.Env(), "length must be greater than 0");
  Op op;
  op.syscall = "mincore";
  op.run = [=]() -> long {
    const int64_t page = sysconf(_SC_PAGESIZE);
    const int64_t start = offset - offset % page;
    const size_t span = static_cast<size_t>(offset + length - start);
    void* map = mmap(nullptr, span, PROT_READ, MAP_SHARED, fd, start);
    if (map == MAP_FAILED) return -errno;
    std::vector<unsigned char> vec((span + page - 1) / page);
    long r = mincore(map, span, vec.data());
    int err = errno;
    munmap(map, span);
    if (r < 0) return -err;
    long resident = 0;
    for (unsigned char v : vec) resident += v & 1;
    return resident;
  };
  return op;
}

}  // namespace

void InitMemory(Napi::Env env, Napi::Object exports) {
  exports.Set("addressModulo", Napi::Function::New(env, AddressModulo, "addressModulo"));
  ExportOp(env, exports, "residentPages", BuildResidentPages);
  exports.Set("pageSize", Napi::Number::New(env, static_cast<double>(sysconf(_SC_PAGESIZE))));
}

}  // namespace odirect
