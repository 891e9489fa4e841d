// io_uring on the Node event loop. One ring per addon instance (main thread or
// worker), shared by every file and by every copy of the JS module on that
// thread (lib/engines/uring.ts keeps its engine on this addon's exports). JS prepares SQEs (uringPrep*), calls
// uringSubmit() at the end of its tick (at once when the ring was idle), and gets completions in batches:
// the ring fd (an eventfd with DEFER_TASKRUN) is watched by a uv_poll_t; on wake
// every ready CQE is reaped in one pass and handed to one JS callback.
// A wake is only a hint (docs/kernel-facts.md §5): more or fewer wakes than CQEs.
#include <errno.h>
#include <liburing.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "args.h"
#include "compat.h"
#include "errors.h"
#include "owned.h"
#include "uring.h"

namespace odirect {
namespace {

constexpr uint8_t kOpFtruncate = 55;  // IORING_OP_FTRUNCATE (6.9); liburing 2.3 has no prep helper
// Slots of the fixed-file table: one per file open at once on this thread (a
// DirectFile registers its fd); files beyond it use their plain fd.
constexpr unsigned kFileSlots = 1024;

// A request's slot, by id (the SQE's user_data; JS takes ids from a free list
// of [1, CQ size]): what its SQE needs to outlive, that is its buffers' memory
// (odirect blocks by reference count, SharedArrayBuffer views by a reference
// that stops collection) and the iovec array the kernel imports at issue.
// Slots are reused with their vectors' capacity: no allocation per request.
struct InFlight {
  bool busy = false;
  IoBuffers buffers;
};

// How long teardown waits for I/O in flight before it gives up and leaks what
// that I/O holds (a stuck device: better leaked memory than a kernel writing
// into freed memory).
constexpr int kTeardownWaitSeconds = 30;

// The poll handle and the env-cleanup hook that waits for its close: Node
// unloads the addon at env teardown, so the handle must be closed, and its
// close callback run, before then (napi_add_async_cleanup_hook holds the
// teardown until the hook is removed).
struct PollBox {
  uv_poll_t poll;
  napi_async_cleanup_hook_handle hook = nullptr;
};

class Ring {
 public:
  Ring(Napi::Env env, Napi::Function onComplete) : env_(env) {
    napi_create_reference(env, onComplete, 1, &onComplete_);
    napi_value name;
    napi_create_string_utf8(env, "odirect:uring", NAPI_AUTO_LENGTH, &name);
    napi_async_init(env, nullptr, name, &context_);
  }

  // Returns 0 or a negative errno. deferTaskrun: SINGLE_ISSUER|DEFER_TASKRUN
  // (6.1+), where completions wait for io_uring_get_events from this thread.
  int Setup(unsigned entries, bool deferTaskrun) {
    io_uring_params params{};
    // SUBMIT_ALL (5.18): an SQE that fails to start does not stop the ones after it
    // from being submitted (without it they stay queued until the next submit).
    params.flags = IORING_SETUP_SUBMIT_ALL;
    // TASKRUN_FLAG: the kernel sets IORING_SQ_TASKRUN while deferred work waits,
    // which Reap checks after clearing the eventfd (docs/kernel-facts.md §5).
    const unsigned deferFlags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
    if (deferTaskrun) params.flags |= deferFlags;
    deferTaskrun_ = deferTaskrun;
    int r = io_uring_queue_init_params(entries, &ring_, &params);
    if (r == -EINVAL) {
      params = io_uring_params{};
      if (deferTaskrun) params.flags = deferFlags;
      r = io_uring_queue_init_params(entries, &ring_, &params);
    }
    if (r < 0) return r;
    io_uring_probe* probe = io_uring_get_probe_ring(&ring_);
    canFtruncate_ = probe && io_uring_opcode_supported(probe, kOpFtruncate);
    if (probe) io_uring_free_probe(probe);
    ringReady_ = true;
    // A sparse fixed-file table (5.19+): an SQE naming a slot (IOSQE_FIXED_FILE)
    // skips the per-request fd lookup and file reference (fget/fput in
    // io_file_get_normal). No bigger than RLIMIT_NOFILE, which the kernel
    // requires; without a table every request uses its plain fd.
    rlimit files{};
    unsigned fileSlots = kFileSlots;
    if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < fileSlots) fileSlots = static_cast<unsigned>(files.rlim_cur);
    if (fileSlots > 0 && io_uring_register_files_sparse(&ring_, fileSlots) == 0) {
      fileSlotTaken_.assign(fileSlots, false);
      fileSlots_ = fileSlots;
    }
    features_ = params.features;
    cqEntries_ = params.cq_entries;
    sqEntries_ = params.sq_entries;
    slots_.resize(cqEntries_ + 1);  // ids 1..cq_entries; 0 is never used
    // Completions reach JS through two arrays shared with it (ids, results),
    // made once: one number per batch crosses, no objects.
    napi_value ids, results;
    if (napi_create_arraybuffer(env_, cqEntries_ * sizeof(uint32_t), reinterpret_cast<void**>(&completedIds_), &ids) != napi_ok ||
        napi_create_arraybuffer(env_, cqEntries_ * sizeof(int32_t), reinterpret_cast<void**>(&completedResults_), &results) != napi_ok ||
        napi_create_reference(env_, ids, 1, &completedIdsRef_) != napi_ok ||
        napi_create_reference(env_, results, 1, &completedResultsRef_) != napi_ok) {
      return -ENOMEM;
    }
    // The loop watches the ring fd itself: readable while CQEs wait (level), and
    // no eventfd read(2) per wake. With DEFER_TASKRUN nothing wakes a poller of
    // the ring fd, so there an eventfd it is (docs/kernel-facts.md §5).
    int pollFd = ring_.ring_fd;
    if (deferTaskrun) {
      efd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
      if (efd_ < 0) return -errno;
      r = io_uring_register_eventfd(&ring_, efd_);
      if (r < 0) return r;
      pollFd = efd_;
    }
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env_, &loop) != napi_ok) return -EINVAL;
    auto* box = new PollBox;
    if ((r = uv_poll_init(loop, &box->poll, pollFd)) < 0) {
      delete box;
      return r;
    }
    box->poll.data = this;
    poll_ = &box->poll;
    uv_poll_start(poll_, UV_READABLE, OnReadable);
    // While nothing is in flight the poll must not keep the process alive.
    uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
    if (napi_add_async_cleanup_hook(env_, OnEnvCleanup, this, &box->hook) != napi_ok) box->hook = nullptr;
    return 0;
  }

  ~Ring() {
    Teardown();
    // Instance data is freed at env teardown, when these calls may fail: then there is nothing left to free.
    if (context_) napi_async_destroy(env_, context_);
    if (onComplete_) napi_delete_reference(env_, onComplete_);
    if (completedIdsRef_) napi_delete_reference(env_, completedIdsRef_);
    if (completedResultsRef_) napi_delete_reference(env_, completedResultsRef_);
  }

  // Waits (bounded) for I/O in flight so the kernel never touches freed
  // buffers, then releases the poll handle, eventfd and ring. A signal
  // (EINTR) does not end the wait; if the I/O does not finish, its memory
  // and the registered region are leaked, never freed.
  void Teardown() {
    if (ringReady_) {
      int waited = 0;
      while (inflightCount_ > 0 && waited < kTeardownWaitSeconds) {
        io_uring_submit(&ring_);
        __kernel_timespec ts{1, 0};
        io_uring_cqe* cqe = nullptr;
        int r = io_uring_wait_cqe_timeout(&ring_, &cqe, &ts);
        if (r == -EINTR) continue;
        if (r == -ETIME) {
          waited++;
          continue;
        }
        if (r < 0 || !cqe) break;
        Release(cqe->user_data);
        io_uring_cqe_seen(&ring_, cqe);
      }
      if (inflightCount_ > 0) {
        for (InFlight& slot : slots_) {
          if (!slot.busy) continue;
          for (auto& hold : slot.buffers.holds) hold.Leak();
          for (auto& ref : slot.buffers.keep) ref.SuppressDestruct();
          new std::vector<iovec>(std::move(slot.buffers.iov));  // the kernel may still read it: leaked
          slot.buffers.holds.clear();
          slot.buffers.keep.clear();
          slot.busy = false;
        }
        inflightCount_ = 0;
        arena_ = nullptr;  // its creator's reference is kept for ever
      }
    }
    if (arena_) {
      DropArena(arena_);
      arena_ = nullptr;
    }
    if (poll_) {
      uv_poll_stop(poll_);
      uv_close(reinterpret_cast<uv_handle_t*>(poll_), OnPollClosed);
      poll_ = nullptr;
    }
    if (ringReady_) {
      io_uring_queue_exit(&ring_);
      ringReady_ = false;
    }
    if (efd_ >= 0) {
      close(efd_);
      efd_ = -1;
    }
    for (InFlight& slot : slots_) slot.buffers.Clear();
    inflightCount_ = 0;
  }

  // The free slot for `id`: a RangeError for an id outside [1, CQ size] or one
  // on the ring already (a caller bug: the JS engine hands out each id once).
  InFlight& FreeSlot(Napi::Env env, uint64_t id) {
    if (id == 0 || id >= slots_.size()) throw Napi::RangeError::New(env, "id must be from 1 to the CQ size");
    if (slots_[id].busy) throw Napi::RangeError::New(env, "id is already on the ring");
    return slots_[id];
  }

  // An SQE, submitting what is queued once if the SQ is full; null when still full.
  io_uring_sqe* Sqe() {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (!sqe) {
      Submit();
      sqe = io_uring_get_sqe(&ring_);
    }
    return sqe;
  }

  // The SQE is for slot `id`, whose buffers are already in it.
  void Track(io_uring_sqe* sqe, uint64_t id) {
    io_uring_sqe_set_data64(sqe, id);
    slots_[id].busy = true;
    if (++inflightCount_ == 1 && poll_) uv_ref(reinterpret_cast<uv_handle_t*>(poll_));
  }

  // Allocates a region of `bytes` and registers it as fixed buffer 0 (held
  // until the ring and every slot handed out from it are gone).
  int RegisterArena(size_t bytes) {
    if (arena_) return -EBUSY;
    Arena* arena = NewArena(bytes);
    if (!arena) return -ENOMEM;
    iovec iov{ArenaBase(arena), ArenaBytes(arena)};
    int r = io_uring_register_buffers(&ring_, &iov, 1);
    if (r < 0) {
      DropArena(arena);
      return r;
    }
    arena_ = arena;
    fixedBase_ = ArenaBase(arena);
    fixedLength_ = ArenaBytes(arena);
    return 0;
  }

  Arena* arena() const { return arena_; }

  // Puts `fd` in a free slot of the fixed-file table: the slot, or a negative
  // errno (ENOSPC: the table is full or missing; then the fd is used as it is).
  int RegisterFile(int fd) {
    // Round robin from the last slot handed out: a slot just emptied is the
    // last to be handed out again.
    for (unsigned i = 0; i < fileSlots_; i++) {
      unsigned slot = (nextFileSlot_ + i) % fileSlots_;
      if (fileSlotTaken_[slot]) continue;
      int r = io_uring_register_files_update(&ring_, slot, &fd, 1);
      if (r < 0) return r;
      fileSlotTaken_[slot] = true;
      nextFileSlot_ = slot + 1;
      return static_cast<int>(slot);
    }
    return -ENOSPC;
  }

  // Points a slot at `fd` (the number was closed behind odirect's back and
  // reused, or the slot was emptied): requests naming it reach what fd names.
  int ReplaceFile(int slot, int fd) {
    if (slot < 0 || static_cast<unsigned>(slot) >= fileSlots_) return -EINVAL;
    int r = io_uring_register_files_update(&ring_, slot, &fd, 1);
    if (r < 0) return r;
    fileSlotTaken_[slot] = true;
    return 0;
  }

  // Empties `slot` before its fd is closed. Requests already submitted keep
  // the file: the kernel holds the table's old node until they complete.
  int UnregisterFile(int slot) {
    if (slot < 0 || static_cast<unsigned>(slot) >= fileSlots_) return -EINVAL;
    if (!fileSlotTaken_[slot]) return 0;
    int none = -1;
    int r = io_uring_register_files_update(&ring_, slot, &none, 1);
    if (r < 0) return r;
    fileSlotTaken_[slot] = false;
    return 0;
  }

  // Empties every taken slot (an interrupt path that points fds elsewhere so a
  // filesystem can be unmounted: the table's references would keep it busy).
  void UnregisterAllFiles() {
    for (unsigned slot = 0; slot < fileSlots_; slot++) {
      if (fileSlotTaken_[slot]) UnregisterFile(static_cast<int>(slot));
    }
  }

  // Turns the SQEs still waiting in the SQ into NOPs (same ids) and returns
  // the ids: after a submit error that does not clear, the JS side rejects
  // those requests, and their I/O must then never happen.
  std::vector<uint32_t> CancelQueued() {
    std::vector<uint32_t> ids;
    unsigned mask = ring_.sq.ring_mask;
    // Without SQPOLL the kernel reads SQEs only inside io_uring_enter on this
    // thread, so those past its head can be rewritten here.
    for (unsigned pos = io_uring_smp_load_acquire(ring_.sq.khead); pos != ring_.sq.sqe_tail; pos++) {
      io_uring_sqe* sqe = &ring_.sq.sqes[pos & mask];
      uint64_t id = sqe->user_data;
      io_uring_prep_nop(sqe);
      sqe->user_data = id;
      ids.push_back(static_cast<uint32_t>(id));
    }
    return ids;
  }

  // True when [p, p+n) lies inside the registered region.
  bool InFixed(const void* p, size_t n) const {
    auto* b = static_cast<const uint8_t*>(p);
    return fixedBase_ && b >= fixedBase_ && n <= fixedLength_ && b - fixedBase_ <= static_cast<ptrdiff_t>(fixedLength_ - n);
  }

  // The SQEs stay queued on any error and go with the next submit; the JS
  // side retries a bounded number of times (EINTR, EAGAIN, EBUSY clear).
  int Submit() {
    int r = io_uring_submit(&ring_);
    return r == -EINTR ? 0 : r;
  }

  // SQEs prepared but not yet taken by the kernel.
  unsigned Queued() { return io_uring_sq_ready(&ring_); }
  bool canFtruncate() const { return canFtruncate_; }
  unsigned cqEntries() const { return cqEntries_; }
  unsigned sqEntries() const { return sqEntries_; }
  unsigned features() const { return features_; }

 private:
  static void OnEnvCleanup(napi_async_cleanup_hook_handle hook, void* arg) {
    static_cast<Ring*>(arg)->Teardown();
  }

  static void OnPollClosed(uv_handle_t* handle) {
    PollBox* box = reinterpret_cast<PollBox*>(handle);  // poll is the first member
    napi_async_cleanup_hook_handle hook = box->hook;
    delete box;
    if (hook) napi_remove_async_cleanup_hook(hook);
  }

  static void OnReadable(uv_poll_t* handle, int status, int events) {
    static_cast<Ring*>(handle->data)->Reap();
  }

  // The CQE for `id` came: the kernel is done with its buffers, which may be collected from here on.
  void Release(uint64_t id) {
    if (id == 0 || id >= slots_.size() || !slots_[id].busy) return;
    slots_[id].busy = false;
    slots_[id].buffers.Clear();
    inflightCount_--;
  }

  void Reap() {
    if (deferTaskrun_) {
      // The eventfd fires when work is queued, but the CQEs are posted only when
      // this thread runs it (get_events), which signals the eventfd once more:
      // read it after, or the next wake finds nothing. Work queued after get_events
      // has its signal read away here too, so go again while IORING_SQ_TASKRUN
      // says some waits (docs/kernel-facts.md §5).
      uint64_t wakes;
      do {
        io_uring_get_events(&ring_);
        (void)!read(efd_, &wakes, sizeof wakes);
      } while (IO_URING_READ_ONCE(*ring_.sq.kflags) & IORING_SQ_TASKRUN);
    }
    // At most cq_entries requests are on the ring (JS holds that many ids), so
    // the shared arrays hold every CQE there is; a full batch is delivered and
    // the peek goes on, should more have come meanwhile.
    unsigned count = 0;
    io_uring_cqe* cqes[256];
    for (;;) {
      unsigned room = std::min(256u, cqEntries_ - count);
      unsigned n = room == 0 ? 0 : io_uring_peek_batch_cqe(&ring_, cqes, room);
      if (n == 0 && count == cqEntries_) {
        Deliver(count);
        count = 0;
        continue;
      }
      if (n == 0) break;
      for (unsigned i = 0; i < n; i++) {
        completedIds_[count] = static_cast<uint32_t>(cqes[i]->user_data);
        completedResults_[count] = cqes[i]->res;
        count++;
        Release(cqes[i]->user_data);
      }
      io_uring_cq_advance(&ring_, n);
    }
    if (poll_ && inflightCount_ == 0) uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
    if (count > 0) Deliver(count);
  }

  // Hands one batch to JS. Plain N-API with every status checked, never a C++
  // exception: this runs from a libuv callback, also while a worker or the
  // process is exiting, when JS can no longer run and node-addon-api's error
  // path would abort the process. Then the batch is dropped (the I/O is done).
  void Deliver(unsigned count) {
    napi_handle_scope scope;
    if (napi_open_handle_scope(env_, &scope) != napi_ok) return;
    napi_value argv[1], fn, global, ignored;
    bool ok = napi_create_uint32(env_, count, &argv[0]) == napi_ok &&
              napi_get_reference_value(env_, onComplete_, &fn) == napi_ok && fn != nullptr &&
              napi_get_global(env_, &global) == napi_ok;
    if (ok) {
      // make_callback runs the nextTick and microtask queues on return, so the
      // promises settled here (and the submits they trigger) run at once.
      if (napi_make_callback(env_, context_, global, fn, 1, argv, &ignored) == napi_pending_exception) {
        napi_value error;
        if (napi_get_and_clear_last_exception(env_, &error) == napi_ok) napi_fatal_exception(env_, error);
      }
    }
    napi_close_handle_scope(env_, scope);
  }

  napi_env env_;
  napi_async_context context_ = nullptr;
  napi_ref onComplete_ = nullptr;
  io_uring ring_{};
  bool ringReady_ = false;
  int efd_ = -1;
  uv_poll_t* poll_ = nullptr;
  bool deferTaskrun_ = false;
  bool canFtruncate_ = false;
  uint8_t* fixedBase_ = nullptr;
  size_t fixedLength_ = 0;
  Arena* arena_ = nullptr;
  unsigned features_ = 0, cqEntries_ = 0, sqEntries_ = 0;
  std::vector<InFlight> slots_;
  unsigned inflightCount_ = 0;
  std::vector<bool> fileSlotTaken_;
  unsigned nextFileSlot_ = 0;
  unsigned fileSlots_ = 0;
  uint32_t* completedIds_ = nullptr;
  int32_t* completedResults_ = nullptr;
  napi_ref completedIdsRef_ = nullptr;
  napi_ref completedResultsRef_ = nullptr;

 public:
  // (completedIds, completedResults) as typed arrays for uringInit's result.
  void CompletionArrays(Napi::Env env, Napi::Object into) {
    napi_value ids, results;
    napi_get_reference_value(env, completedIdsRef_, &ids);
    napi_get_reference_value(env, completedResultsRef_, &results);
    into.Set("completedIds", Napi::Uint32Array::New(env, cqEntries_, Napi::ArrayBuffer(env, ids), 0));
    into.Set("completedResults", Napi::Int32Array::New(env, cqEntries_, Napi::ArrayBuffer(env, results), 0));
  }
};

// Per-instance (thread) state: the ring, once made.
struct InstanceData {
  std::unique_ptr<Ring> ring;
};

InstanceData* Instance(Napi::Env env) {
  auto* data = env.GetInstanceData<InstanceData>();
  if (!data) {
    data = new InstanceData();
    env.SetInstanceData(data);  // deleted (ring torn down) when the env goes: worker exit, process exit
  }
  return data;
}

Ring& RequireRing(Napi::Env env) {
  InstanceData* data = Instance(env);
  if (!data->ring) throw Napi::Error::New(env, "io_uring ring not initialised: call uringInit first");
  return *data->ring;
}

uint64_t ArgId(const Napi::CallbackInfo& info, size_t index) { return ArgUint32(info, index, "id"); }

// The opcodes the engine issues. READ/WRITE (5.6) and READV/WRITEV (5.1) are
// what reads and writes need: a ring on 5.1–5.5 sets up but lacks READ/WRITE.
struct NeededOp {
  uint8_t opcode;
  const char* name;
};
constexpr NeededOp kNeededOps[] = {
    {IORING_OP_READV, "READV"},           {IORING_OP_WRITEV, "WRITEV"},
    {IORING_OP_READ, "READ"},             {IORING_OP_WRITE, "WRITE"},
    {IORING_OP_READ_FIXED, "READ_FIXED"}, {IORING_OP_WRITE_FIXED, "WRITE_FIXED"},
    {IORING_OP_FSYNC, "FSYNC"},           {IORING_OP_FALLOCATE, "FALLOCATE"},
    {IORING_OP_SYNC_FILE_RANGE, "SYNC_FILE_RANGE"},
};

// () → { errno, missing }: errno 0 when a ring can be set up here, else the
// errno io_uring_setup gave (ENOSYS: no kernel support; EPERM: io_uring_disabled
// or a seccomp filter); missing: the needed opcodes the kernel's probe lacks
// (all of them where the probe itself is missing, before 5.6).
Napi::Value UringSupport(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object result = Napi::Object::New(env);
  Napi::Array missing = Napi::Array::New(env);
  io_uring ring;
  int r = io_uring_queue_init(2, &ring, 0);
  if (r == 0) {
    io_uring_probe* probe = io_uring_get_probe_ring(&ring);
    uint32_t n = 0;
    for (const NeededOp& op : kNeededOps) {
      if (!probe || !io_uring_opcode_supported(probe, op.opcode)) missing.Set(n++, Napi::String::New(env, op.name));
    }
    if (probe) io_uring_free_probe(probe);
    io_uring_queue_exit(&ring);
  }
  result.Set("errno", Napi::Number::New(env, r < 0 ? -r : 0));
  result.Set("missing", missing);
  return result;
}

// (entries, onComplete(count), deferTaskrun) → { sqEntries, cqEntries, features,
// ftruncate, completedIds, completedResults }: each batch of completions is
// written to the first `count` entries of completedIds/completedResults.
Napi::Value UringInit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireArgs(info, 3, "uringInit");
  uint32_t entries = ArgUint32(info, 0, "entries");
  if (entries < 1 || entries > 32768) throw Napi::RangeError::New(env, "entries must be from 1 to 32768");
  if (!info[1].IsFunction()) throw Napi::TypeError::New(env, "onComplete must be a function");
  InstanceData* data = Instance(env);
  if (data->ring) throw Napi::Error::New(env, "io_uring ring already initialised on this thread");
  auto ring = std::make_unique<Ring>(env, info[1].As<Napi::Function>());
  int r = ring->Setup(entries, info[2].ToBoolean());
  if (r < 0) throw ErrnoError(env, -r, "io_uring_setup");
  Napi::Object result = Napi::Object::New(env);
  result.Set("sqEntries", Napi::Number::New(env, ring->sqEntries()));
  result.Set("cqEntries", Napi::Number::New(env, ring->cqEntries()));
  result.Set("features", Napi::Number::New(env, ring->features()));
  result.Set("ftruncate", Napi::Boolean::New(env, ring->canFtruncate()));
  ring->CompletionArrays(env, result);
  data->ring = std::move(ring);
  return result;
}

// (fd, buffers[], position, rwflags, id, fixed, fixedFile) → true when queued, false when the SQ is full.
// fixed: use WRITE_FIXED/READ_FIXED on the registered region (one buffer inside it).
// fixedFile: `fd` is a slot of the fixed-file table (uringRegisterFile), not an fd.
Napi::Value PrepVectored(const Napi::CallbackInfo& info, bool write) {
  Napi::Env env = info.Env();
  RequireArgs(info, 7, write ? "uringPrepWritev" : "uringPrepReadv");
  Ring& ring = RequireRing(env);
  int fd = ArgFd(info, 0);
  int64_t position = ArgOffset(info, 2, "position");
  uint32_t rwflags = ArgUint32(info, 3, "flags");
  uint64_t id = ArgId(info, 4);
  bool fixed = info[5].ToBoolean();
  bool fixedFile = info[6].ToBoolean();
  if (!info[1].IsArray()) throw Napi::TypeError::New(env, "buffers must be an array of ArrayBufferViews");
  InFlight& slot = ring.FreeSlot(env, id);
  IoBuffers& buffers = slot.buffers;
  try {
    CollectBuffers(env, info[1], buffers);
    if (fixed && (buffers.iov.size() != 1 || !ring.InFixed(buffers.iov[0].iov_base, buffers.iov[0].iov_len))) {
      throw Napi::RangeError::New(env, "a fixed-buffer request needs one buffer inside the registered region");
    }
    // The kernel reads and writes this memory after we return to JS.
    if (buffers.callerMemory) throw NotOwnedError(env);
  } catch (...) {
    buffers.Clear();  // the slot stays free: drop what was collected
    throw;
  }
  io_uring_sqe* sqe = ring.Sqe();
  if (!sqe) {
    buffers.Clear();
    return Napi::Boolean::New(env, false);
  }
  const iovec* iov = buffers.iov.data();
  if (fixed) {
    // The kernel refuses RWF_ATOMIC here (EINVAL): the policy layer never asks for it.
    if (write) io_uring_prep_write_fixed(sqe, fd, iov[0].iov_base, iov[0].iov_len, position, 0);
    else io_uring_prep_read_fixed(sqe, fd, iov[0].iov_base, iov[0].iov_len, position, 0);
  } else if (buffers.iov.size() == 1) {
    // WRITE/READ (not the vectored ops) for one buffer: no iovec to import.
    if (write) io_uring_prep_write(sqe, fd, iov[0].iov_base, iov[0].iov_len, position);
    else io_uring_prep_read(sqe, fd, iov[0].iov_base, iov[0].iov_len, position);
  } else {
    if (write) io_uring_prep_writev(sqe, fd, iov, buffers.iov.size(), position);
    else io_uring_prep_readv(sqe, fd, iov, buffers.iov.size(), position);
  }
  sqe->rw_flags = static_cast<__kernel_rwf_t>(rwflags);
  // The kernel checks the slot when it issues the SQE (-EBADF if empty).
  if (fixedFile) sqe->flags |= IOSQE_FIXED_FILE;
  ring.Track(sqe, id);
  return Napi::Boolean::New(env, true);
}

Napi::Value PrepWritev(const Napi::CallbackInfo& info) { return PrepVectored(info, true); }
Napi::Value PrepReadv(const Napi::CallbackInfo& info) { return PrepVectored(info, false); }

// (fd, dataOnly, id)
Napi::Value PrepFsync(const Napi::CallbackInfo& info) {
  RequireArgs(info, 3, "uringPrepFsync");
  Ring& ring = RequireRing(info.Env());
  int fd = ArgFd(info, 0);
  bool dataOnly = info[1].ToBoolean();
  uint64_t id = ArgId(info, 2);
  ring.FreeSlot(info.Env(), id);
  io_uring_sqe* sqe = ring.Sqe();
  if (!sqe) return Napi::Boolean::New(info.Env(), false);
  io_uring_prep_fsync(sqe, fd, dataOnly ? IORING_FSYNC_DATASYNC : 0);
  ring.Track(sqe, id);
  return Napi::Boolean::New(info.Env(), true);
}

// (fd, mode, offset, length, id)
Napi::Value PrepFallocate(const Napi::CallbackInfo& info) {
  RequireArgs(info, 5, "uringPrepFallocate");
  Ring& ring = RequireRing(info.Env());
  int fd = ArgFd(info, 0);
  int mode = ArgInt32(info, 1, "mode");
  int64_t offset = ArgOffset(info, 2, "offset");
  int64_t length = ArgOffset(info, 3, "length");
  uint64_t id = ArgId(info, 4);
  ring.FreeSlot(info.Env(), id);
  io_uring_sqe* sqe = ring.Sqe();
  if (!sqe) return Napi::Boolean::New(info.Env(), false);
  io_uring_prep_fallocate(sqe, fd, mode, offset, length);
  ring.Track(sqe, id);
  return Napi::Boolean::New(info.Env(), true);
}

// (fd, size, id) — only where the kernel has IORING_OP_FTRUNCATE (6.9; uringInit says).
Napi::Value PrepFtruncate(const Napi::CallbackInfo& info) {
  RequireArgs(info, 3, "uringPrepFtruncate");
  Ring& ring = RequireRing(info.Env());
  if (!ring.canFtruncate()) throw Napi::Error::New(info.Env(), "this kernel's io_uring has no FTRUNCATE (6.9+)");
  int fd = ArgFd(info, 0);
  int64_t size = ArgOffset(info, 1, "size");
  uint64_t id = ArgId(info, 2);
  ring.FreeSlot(info.Env(), id);
  io_uring_sqe* sqe = ring.Sqe();
  if (!sqe) return Napi::Boolean::New(info.Env(), false);
  io_uring_prep_rw(kOpFtruncate, sqe, fd, nullptr, 0, static_cast<__u64>(size));
  ring.Track(sqe, id);
  return Napi::Boolean::New(info.Env(), true);
}

// (fd, offset, nbytes ≤ 2^32-1, flags, id)
Napi::Value PrepSyncFileRange(const Napi::CallbackInfo& info) {
  RequireArgs(info, 5, "uringPrepSyncFileRange");
  Ring& ring = RequireRing(info.Env());
  int fd = ArgFd(info, 0);
  int64_t offset = ArgOffset(info, 1, "offset");
  uint32_t nbytes = ArgUint32(info, 2, "nbytes");  // the SQE's len field is 32 bits
  uint32_t flags = ArgUint32(info, 3, "flags");
  uint64_t id = ArgId(info, 4);
  ring.FreeSlot(info.Env(), id);
  io_uring_sqe* sqe = ring.Sqe();
  if (!sqe) return Napi::Boolean::New(info.Env(), false);
  io_uring_prep_sync_file_range(sqe, fd, nbytes, offset, static_cast<int>(flags));
  ring.Track(sqe, id);
  return Napi::Boolean::New(info.Env(), true);
}

// (targetId, id): IORING_OP_ASYNC_CANCEL of the request with user_data targetId
// (AbortSignal). Its own CQE (id) says whether it was found: 0, -ENOENT or
// -EALREADY (already running: the target completes as usual). The target's
// buffers stay held until its own CQE comes, whatever the cancel says.
Napi::Value PrepCancel(const Napi::CallbackInfo& info) {
  RequireArgs(info, 2, "uringPrepCancel");
  Ring& ring = RequireRing(info.Env());
  uint64_t target = ArgId(info, 0);
  uint64_t id = ArgId(info, 1);
  ring.FreeSlot(info.Env(), id);
  io_uring_sqe* sqe = ring.Sqe();
  if (!sqe) return Napi::Boolean::New(info.Env(), false);
  io_uring_prep_cancel64(sqe, target, 0);
  ring.Track(sqe, id);
  return Napi::Boolean::New(info.Env(), true);
}

// (fd) → its slot in this thread's fixed-file table, or -1 when the table is full or missing.
Napi::Value RegisterFileSlot(const Napi::CallbackInfo& info) {
  RequireArgs(info, 1, "uringRegisterFile");
  int r = RequireRing(info.Env()).RegisterFile(ArgFd(info, 0));
  if (r == -ENOSPC) return Napi::Number::New(info.Env(), -1);
  if (r < 0) throw ErrnoError(info.Env(), -r, "io_uring_register");
  return Napi::Number::New(info.Env(), r);
}

// (slot, fd): the slot now names `fd`.
Napi::Value ReplaceFileSlot(const Napi::CallbackInfo& info) {
  RequireArgs(info, 2, "uringReplaceFile");
  int r = RequireRing(info.Env()).ReplaceFile(ArgInt32(info, 0, "slot"), ArgFd(info, 1));
  if (r < 0) throw ErrnoError(info.Env(), -r, "io_uring_register");
  return info.Env().Undefined();
}

// (slot): empties it (before its fd is closed).
Napi::Value UnregisterFileSlot(const Napi::CallbackInfo& info) {
  RequireArgs(info, 1, "uringUnregisterFile");
  int r = RequireRing(info.Env()).UnregisterFile(ArgInt32(info, 0, "slot"));
  if (r < 0) throw ErrnoError(info.Env(), -r, "io_uring_register");
  return info.Env().Undefined();
}

// (): empties every slot of this thread's fixed-file table.
Napi::Value UnregisterAllFileSlots(const Napi::CallbackInfo& info) {
  RequireRing(info.Env()).UnregisterAllFiles();
  return info.Env().Undefined();
}

// (bytes) allocates a region and registers it as fixed buffer 0 of this thread's ring.
Napi::Value RegisterArena(const Napi::CallbackInfo& info) {
  RequireArgs(info, 1, "uringRegisterArena");
  Ring& ring = RequireRing(info.Env());
  uint32_t bytes = ArgUint32(info, 0, "bytes");
  // io_uring caps one registered buffer at 1 GiB.
  if (bytes == 0 || bytes % 4096 != 0 || bytes > (1u << 30)) {
    throw Napi::RangeError::New(info.Env(), "bytes must be a multiple of 4096 from 4096 to 1 GiB");
  }
  int r = ring.RegisterArena(bytes);
  if (r < 0) throw ErrnoError(info.Env(), -r, "io_uring_register");
  return info.Env().Undefined();
}

// (size) → an ArrayBuffer over a slot of the registered region (whole 4 KiB
// pages, zeroed), or undefined when the region is full or missing.
Napi::Value ArenaAcquireSlot(const Napi::CallbackInfo& info) {
  RequireArgs(info, 1, "uringArenaAcquire");
  Ring& ring = RequireRing(info.Env());
  uint32_t size = ArgUint32(info, 0, "size");
  if (size == 0) throw Napi::RangeError::New(info.Env(), "size must be greater than 0");
  if (!ring.arena()) return info.Env().Undefined();
  return ArenaAcquire(info.Env(), ring.arena(), size);
}

// () → ids of the SQEs that were still queued, now NOPs (see Ring::CancelQueued).
Napi::Value CancelQueued(const Napi::CallbackInfo& info) {
  Ring& ring = RequireRing(info.Env());
  std::vector<uint32_t> ids = ring.CancelQueued();
  Napi::Array result = Napi::Array::New(info.Env(), ids.size());
  for (uint32_t i = 0; i < ids.size(); i++) result.Set(i, Napi::Number::New(info.Env(), ids[i]));
  return result;
}

// () → SQEs still queued after submitting (the kernel can take fewer than asked:
// EAGAIN/EBUSY, or a failed SQE on kernels without SUBMIT_ALL). The caller submits again.
Napi::Value Submit(const Napi::CallbackInfo& info) {
  Ring& ring = RequireRing(info.Env());
  int r = ring.Submit();
  if (r < 0) throw ErrnoError(info.Env(), -r, "io_uring_enter");
  return Napi::Number::New(info.Env(), ring.Queued());
}

}  // namespace

void InitUring(Napi::Env env, Napi::Object exports) {
  exports.Set("uringSupport", Napi::Function::New(env, UringSupport, "uringSupport"));
  exports.Set("uringInit", Napi::Function::New(env, UringInit, "uringInit"));
  exports.Set("uringPrepWritev", Napi::Function::New(env, PrepWritev, "uringPrepWritev"));
  exports.Set("uringPrepReadv", Napi::Function::New(env, PrepReadv, "uringPrepReadv"));
  exports.Set("uringPrepFsync", Napi::Function::New(env, PrepFsync, "uringPrepFsync"));
  exports.Set("uringPrepFallocate", Napi::Function::New(env, PrepFallocate, "uringPrepFallocate"));
  exports.Set("uringPrepFtruncate", Napi::Function::New(env, PrepFtruncate, "uringPrepFtruncate"));
  exports.Set("uringPrepSyncFileRange", Napi::Function::New(env, PrepSyncFileRange, "uringPrepSyncFileRange"));
  exports.Set("uringPrepCancel", Napi::Function::New(env, PrepCancel, "uringPrepCancel"));
  exports.Set("uringRegisterFile", Napi::Function::New(env, RegisterFileSlot, "uringRegisterFile"));
  exports.Set("uringReplaceFile", Napi::Function::New(env, ReplaceFileSlot, "uringReplaceFile"));
  exports.Set("uringUnregisterFile", Napi::Function::New(env, UnregisterFileSlot, "uringUnregisterFile"));
  exports.Set("uringUnregisterAllFiles", Napi::Function::New(env, UnregisterAllFileSlots, "uringUnregisterAllFiles"));
  exports.Set("uringRegisterArena", Napi::Function::New(env, RegisterArena, "uringRegisterArena"));
  exports.Set("uringArenaAcquire", Napi::Function::New(env, ArenaAcquireSlot, "uringArenaAcquire"));
  exports.Set("uringCancelQueued", Napi::Function::New(env, CancelQueued, "uringCancelQueued"));
  exports.Set("uringSubmit", Napi::Function::New(env, Submit, "uringSubmit"));
}

}  // namespace odirect
