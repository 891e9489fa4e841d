#include "owned.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#include "args.h"

namespace odirect {

constexpr size_t kPage = 4096;

struct Arena {
  uint8_t* base = nullptr;
  std::vector<uint8_t> used;  // one entry per page
  size_t cursor = 0;
  long refs = 1;  // the creator's
};

struct Block {
  uint8_t* base = nullptr;
  size_t size = 0;
  long refs = 1;  // the JS ArrayBuffer's
  Arena* arena = nullptr;  // set for a slot of a region
  size_t firstPage = 0, pages = 0;
};

namespace {

// One lock for the registry, every reference count and every region's page map:
// taken once per buffer per op, never held across a syscall. Process-wide, as
// the addresses are (blocks can be released from any thread).
std::mutex mu;
std::map<uintptr_t, Block*> live;  // exposed blocks by base address

void DropArenaLocked(Arena* arena) {
  if (--arena->refs > 0) return;
  free(arena->base);
  delete arena;
}

void DropBlockLocked(Block* block) {
  if (--block->refs > 0) return;
  live.erase(reinterpret_cast<uintptr_t>(block->base));
  if (block->arena) {
    Arena* arena = block->arena;
    std::fill(arena->used.begin() + block->firstPage, arena->used.begin() + block->firstPage + block->pages, 0);
    DropArenaLocked(arena);
  } else {
    free(block->base);
  }
  delete block;
}

// The ArrayBuffer's finalizer: runs on the JS thread once V8 freed the backing
// store (after a transfer, when the new owner is collected), or at env teardown.
void FinalizeBlock(napi_env env, void*, void* hint) {
  auto* block = static_cast<Block*>(hint);
  int64_t ignored;
  napi_adjust_external_memory(env, -static_cast<int64_t>(block->size), &ignored);
  std::lock_guard<std::mutex> lock(mu);
  DropBlockLocked(block);
}

// Registers `block` and wraps it; on failure drops it and returns undefined.
Napi::Value Expose(Napi::Env env, Block* block) {
  {
    std::lock_guard<std::mutex> lock(mu);
    live[reinterpret_cast<uintptr_t>(block->base)] = block;
  }
  napi_value ab = nullptr;
  napi_status status = napi_create_external_arraybuffer(env, block->base, block->size, FinalizeBlock, block, &ab);
  if (status != napi_ok) {
    // napi_no_external_buffers_allowed (V8 sandbox) or out of memory: no JS owner was made.
    std::lock_guard<std::mutex> lock(mu);
    DropBlockLocked(block);
    return env.Undefined();
  }
  // V8 does not count memory it did not allocate: told, it collects dropped
  // buffers as soon as it would collect its own of that size.
  int64_t ignored;
  napi_adjust_external_memory(env, static_cast<int64_t>(block->size), &ignored);
  return Napi::Value(env, ab);
}

}  // namespace

MemoryHold& MemoryHold::operator=(MemoryHold&& other) noexcept {
  if (this != &other) {
    MemoryHold gone(std::move(*this));
    block_ = other.block_;
    other.block_ = nullptr;
  }
  return *this;
}

MemoryHold::~MemoryHold() {
  if (!block_) return;
  std::lock_guard<std::mutex> lock(mu);
  DropBlockLocked(block_);
}

bool HoldOwned(const void* data, size_t length, MemoryHold* hold) {
  auto address = reinterpret_cast<uintptr_t>(data);
  std::lock_guard<std::mutex> lock(mu);
  auto it = live.upper_bound(address);
  if (it == live.begin()) return false;
  Block* block = std::prev(it)->second;
  auto base = reinterpret_cast<uintptr_t>(block->base);
  if (address - base > block->size || length > block->size - (address - base)) return false;
  block->refs++;
  *hold = MemoryHold(block);
  return true;
}

Napi::Value NewOwnedArrayBuffer(Napi::Env env, size_t size, size_t alignment) {
  void* memory = nullptr;
  if (posix_memalign(&memory, std::max(alignment, sizeof(void*)), size) != 0) {
    throw Napi::RangeError::New(env, "out of memory allocating an aligned buffer");
  }
  std::memset(memory, 0, size);
  auto* block = new Block;
  block->base = static_cast<uint8_t*>(memory);
  block->size = size;
  return Expose(env, block);
}

Arena* NewArena(size_t bytes) {
  void* memory = nullptr;
  if (bytes == 0 || posix_memalign(&memory, kPage, bytes) != 0) return nullptr;
  std::memset(memory, 0, bytes);
  auto* arena = new Arena;
  arena->base = static_cast<uint8_t*>(memory);
  arena->used.assign(bytes / kPage, 0);
  return arena;
}

uint8_t* ArenaBase(const Arena* arena) { return arena->base; }
size_t ArenaBytes(const Arena* arena) { return arena->used.size() * kPage; }

void DropArena(Arena* arena) {
  std::lock_guard<std::mutex> lock(mu);
  DropArenaLocked(arena);
}

Napi::Value ArenaAcquire(Napi::Env env, Arena* arena, size_t size) {
  const size_t pages = (size + kPage - 1) / kPage;
  auto* block = new Block;
  {
    std::lock_guard<std::mutex> lock(mu);
    // Next-fit from the cursor, wrapping once.
    const size_t total = arena->used.size();
    size_t first = total;
    for (int pass = 0; pass < 2 && first == total; pass++) {
      size_t run = 0;
      for (size_t i = pass == 0 ? arena->cursor : 0; i < total; i++) {
        run = arena->used[i] ? 0 : run + 1;
        if (run == pages) {
          first = i + 1 - pages;
          break;
        }
      }
    }
    if (pages == 0 || first == total) {
      delete block;
      return env.Undefined();
    }
    std::fill(arena->used.begin() + first, arena->used.begin() + first + pages, 1);
    arena->cursor = first + pages;
    arena->refs++;  // the slot's
    block->base = arena->base + first * kPage;
    block->size = pages * kPage;
    block->arena = arena;
    block->firstPage = first;
    block->pages = pages;
  }
  // A reused slot holds what its last user left: zero it, as a fresh buffer is.
  std::memset(block->base, 0, block->size);
  return Expose(env, block);
}

namespace {

// (size, alignment) → external ArrayBuffer, or undefined where external memory is refused.
Napi::Value AllocOwned(const Napi::CallbackInfo& info) {
  RequireArgs(info, 2, "allocOwned");
  uint32_t alignment = ArgUint32(info, 1, "alignment");
  if (alignment == 0 || (alignment & (alignment - 1)) != 0 || alignment > (1u << 20)) {
    throw Napi::RangeError::New(info.Env(), "alignment must be a power of two no larger than 1 MiB");
  }
  int64_t size = ArgOffset(info, 0, "size");
  // V8 caps an ArrayBuffer at 2^53-1 bytes; posix_memalign says ENOMEM long before.
  if (size <= 0 || static_cast<uint64_t>(size) > (uint64_t{1} << 40)) {
    throw Napi::RangeError::New(info.Env(), "size must be from 1 byte to 1 TiB");
  }
  return NewOwnedArrayBuffer(info.Env(), static_cast<size_t>(size), alignment);
}

// (view) → true when the view's bytes lie in memory odirect owns (for tests and the JS router).
Napi::Value IsOwned(const Napi::CallbackInfo& info) {
  RequireArgs(info, 1, "isOwned");
  uint8_t* data = nullptr;
  size_t length = 0;
  ViewSpan(info[0], &data, &length);
  MemoryHold hold;
  return Napi::Boolean::New(info.Env(), HoldOwned(data, length, &hold));
}

// (view) detaches the view's ArrayBuffer when it is odirect memory (every JS
// view of it then has length 0), so its JS reference goes soon, whatever copies
// of the view JS kept; ops in flight keep the memory until they settle.
// → false when the view is not odirect memory (then nothing is done).
Napi::Value DetachOwned(const Napi::CallbackInfo& info) {
  RequireArgs(info, 1, "detachOwned");
  Napi::Env env = info.Env();
  uint8_t* data = nullptr;
  size_t length = 0;
  bool detached = false, shared = false;
  if (!GetViewSpan(info[0], &data, &length, &detached, &shared)) throw Napi::TypeError::New(env, "expected an ArrayBufferView");
  if (detached || shared) return Napi::Boolean::New(env, false);
  {
    MemoryHold hold;
    if (!HoldOwned(data, length, &hold)) return Napi::Boolean::New(env, false);
  }
  Napi::Value buffer = info[0].IsTypedArray() ? Napi::Value(info[0].As<Napi::TypedArray>().ArrayBuffer())
                                              : Napi::Value(info[0].As<Napi::DataView>().ArrayBuffer());
  return Napi::Boolean::New(env, napi_detach_arraybuffer(env, buffer) == napi_ok);
}

// () → number of live blocks (for leak tests).
Napi::Value OwnedBlocks(const Napi::CallbackInfo& info) {
  std::lock_guard<std::mutex> lock(mu);
  return Napi::Number::New(info.Env(), static_cast<double>(live.size()));
}

}  // namespace

void InitOwned(Napi::Env env, Napi::Object exports) {
  exports.Set("allocOwned", Napi::Function::New(env, AllocOwned, "allocOwned"));
  exports.Set("isOwned", Napi::Function::New(env, IsOwned, "isOwned"));
  exports.Set("detachOwned", Napi::Function::New(env, DetachOwned, "detachOwned"));
  exports.Set("ownedBlocks", Napi::Function::New(env, OwnedBlocks, "ownedBlocks"));
}

}  // namespace odirect
