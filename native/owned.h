// Memory odirect owns: blocks it allocated itself and hands to JS as external
// ArrayBuffers. Each block is reference-counted: the JS ArrayBuffer holds one
// reference (dropped by its finalizer, which V8 runs when the backing store is
// freed, so a transfer just moves it to the new owner), and every op in flight
// holds one. The memory goes back only when JS and every op have let go, so
// the kernel never reads or writes memory that was freed (docs/memory.md).
#pragma once
#include <napi.h>

#include <cstddef>
#include <cstdint>

namespace odirect {

struct Block;
struct Arena;

// One reference to a block, held by an op until it settles. Move-only.
class MemoryHold {
 public:
  MemoryHold() = default;
  explicit MemoryHold(Block* block) : block_(block) {}
  MemoryHold(MemoryHold&& other) noexcept : block_(other.block_) { other.block_ = nullptr; }
  MemoryHold& operator=(MemoryHold&& other) noexcept;
  MemoryHold(const MemoryHold&) = delete;
  MemoryHold& operator=(const MemoryHold&) = delete;
  ~MemoryHold();
  // Keeps the reference for ever (the memory is never freed): for I/O that
  // may still be running when the ring is torn down.
  void Leak() { block_ = nullptr; }

 private:
  Block* block_ = nullptr;
};

// A hold on the live odirect block that contains [data, data+length), or an
// empty hold (false) when that memory is not odirect's.
bool HoldOwned(const void* data, size_t length, MemoryHold* hold);

// A zero-filled external ArrayBuffer of `size` bytes at an `alignment`-aligned
// address, or undefined where the runtime refuses external memory (V8 sandbox:
// napi_no_external_buffers_allowed); the JS layer then uses a SharedArrayBuffer.
Napi::Value NewOwnedArrayBuffer(Napi::Env env, size_t size, size_t alignment);

// A region carved into 4 KiB pages, each slot handed out as its own external
// ArrayBuffer (so no slot's .buffer reaches the rest of the region). The region
// is freed when its creator (the ring) and every slot have let go.
Arena* NewArena(size_t bytes);  // nullptr when out of memory
uint8_t* ArenaBase(const Arena* arena);
size_t ArenaBytes(const Arena* arena);
void DropArena(Arena* arena);  // the creator's reference
// A slot of at least `size` bytes as an ArrayBuffer, or undefined when the region is full.
Napi::Value ArenaAcquire(Napi::Env env, Arena* arena, size_t size);

void InitOwned(Napi::Env env, Napi::Object exports);

}  // namespace odirect
