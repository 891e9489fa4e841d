// The address of a view modulo an alignment (owned.cc allocates aligned memory;
// SharedArrayBuffer fallbacks are over-allocated and aligned in JS with this).
// Plus page-cache residency via mincore, for tests and bench.
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdint>
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

// Pages of one mapping window: mincore's vector is this many bytes, whatever the
// length asked for (a length from the caller must never size an allocation).
constexpr int64_t kWindowPages = 1 << 16;  // 256 MiB of file per mmap

// The end of what can be resident: pages past EOF (or past a block device's
// size) cannot be in the page cache, so a huge length costs no more than the file.
int64_t ResidentLimit(int fd, int64_t end) {
  struct stat st;
  if (fstat(fd, &st) != 0) return end;
  int64_t size = -1;
  if (S_ISREG(st.st_mode)) size = st.st_size;
  uint64_t deviceSize = 0;
  if (S_ISBLK(st.st_mode) && ioctl(fd, BLKGETSIZE64, &deviceSize) == 0) size = static_cast<int64_t>(deviceSize);
  return size >= 0 && size < end ? size : end;
}

// (fd, offset, length) → pages of that range now in the page cache. Maps the
// range read-only and shared a window at a time (mapping does not fault pages
// in) and asks mincore.
Op BuildResidentPages(const Napi::CallbackInfo& info) {
  RequireArgs(info, 3, "residentPages");
  int fd = ArgFd(info, 0);
  int64_t offset = ArgOffset(info, 1, "offset");
  int64_t length = ArgOffset(info, 2, "length");
  if (length == 0) throw Napi::RangeError::New(info.Env(), "length must be greater than 0");
  if (length > INT64_MAX - offset) throw Napi::RangeError::New(info.Env(), "offset + length must be at most 2^63-1");
  Op op;
  op.syscall = "mincore";
  op.run = [=]() -> long {
    const int64_t page = sysconf(_SC_PAGESIZE);
    const int64_t window = kWindowPages * page;
    const int64_t end = ResidentLimit(fd, offset + length);
    std::vector<unsigned char> vec(kWindowPages);
    long resident = 0;
    for (int64_t start = offset - offset % page; start < end; start += window) {
      const size_t span = static_cast<size_t>(std::min(window, end - start));
      void* map = mmap(nullptr, span, PROT_READ, MAP_SHARED, fd, start);
      if (map == MAP_FAILED) return -errno;
      long r = mincore(map, span, vec.data());
      int err = errno;
      munmap(map, span);
      if (r < 0) return -err;
      for (size_t i = 0; i < (span + page - 1) / page; i++) resident += vec[i] & 1;
    }
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
