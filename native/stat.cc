// statx with every field the kernel now reports, statfs, and the block-device
// size ioctls.
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <memory>

#include "args.h"
#include "compat.h"
#include "op.h"
#include "stat.h"

namespace odirect {
namespace {

constexpr unsigned kStatxMask = STATX_BASIC_STATS | STATX_BTIME | STATX_MNT_ID | STATX_DIOALIGN |
                                STATX_WRITE_ATOMIC | STATX_DIO_READ_ALIGN;

Napi::Value StatxObject(Napi::Env env, const odirect_statx& s) {
  Napi::Object o = Napi::Object::New(env);
  auto num = [&](const char* key, double value) { o.Set(key, Napi::Number::New(env, value)); };
  num("mask", s.stx_mask);
  num("blksize", s.stx_blksize);
  o.Set("attributes", Napi::BigInt::New(env, static_cast<uint64_t>(s.stx_attributes)));
  o.Set("attributesMask", Napi::BigInt::New(env, static_cast<uint64_t>(s.stx_attributes_mask)));
  num("mode", s.stx_mode);
  num("nlink", s.stx_nlink);
  num("uid", s.stx_uid);
  num("gid", s.stx_gid);
  num("ino", static_cast<double>(s.stx_ino));
  num("size", static_cast<double>(s.stx_size));
  num("blocks", static_cast<double>(s.stx_blocks));
  num("rdevMajor", s.stx_rdev_major);
  num("rdevMinor", s.stx_rdev_minor);
  num("devMajor", s.stx_dev_major);
  num("devMinor", s.stx_dev_minor);
  num("mntId", static_cast<double>(s.stx_mnt_id));
  num("dioMemAlign", s.stx_dio_mem_align);
  num("dioOffsetAlign", s.stx_dio_offset_align);
  num("dioReadOffsetAlign", s.stx_dio_read_offset_align);
  num("atomicWriteUnitMin", s.stx_atomic_write_unit_min);
  num("atomicWriteUnitMax", s.stx_atomic_write_unit_max);
  num("atomicWriteUnitMaxOpt", s.stx_atomic_write_unit_max_opt);
  num("atomicWriteSegmentsMax", s.stx_atomic_write_segments_max);
  num("dax", (s.stx_attributes & STATX_ATTR_DAX) ? 1 : 0);
  num("writeAtomic", (s.stx_attributes & STATX_ATTR_WRITE_ATOMIC) ? 1 : 0);
  // Timestamps as nanoseconds since the epoch (BigInt: a double loses the nanoseconds).
  auto ns = [&](const char* key, const odirect_statx_timestamp& t) {
    o.Set(key, Napi::BigInt::New(env, static_cast<int64_t>(t.tv_sec) * 1000000000 + static_cast<int64_t>(t.tv_nsec)));
  };
  ns("atimeNs", s.stx_atime);
  ns("mtimeNs", s.stx_mtime);
  ns("ctimeNs", s.stx_ctime);
  ns("btimeNs", s.stx_btime);
  return o;
}

// statx(target): target is an fd (AT_EMPTY_PATH) or a path (follows symlinks).
// The raw syscall with our own struct: glibc's wrapper copies into its older layout.
Op BuildStatx(const Napi::CallbackInfo& info) {
  RequireArgs(info, 1, "statx");
  int dirfd = AT_FDCWD;
  int flags = AT_STATX_SYNC_AS_STAT;
  std::string path;
  if (info[0].IsString()) {
    path = ArgPath(info, 0);
  } else {
    dirfd = ArgFd(info, 0);
    flags |= AT_EMPTY_PATH;
  }
  auto buf = std::make_shared<odirect_statx>();
  Op op;
  op.syscall = "statx";
  op.run = [=]() -> long {
    *buf = odirect_statx{};
    return SysResult(syscall(SYS_statx, dirfd, path.c_str(), flags, kStatxMask, buf.get()));
  };
  op.result = [buf](Napi::Env env, long) { return StatxObject(env, *buf); };
  return op;
}

Op BuildStatfs(const Napi::CallbackInfo& info) {
  RequireArgs(info, 1, "statfs");
  std::string path = ArgPath(info, 0);
  auto buf = std::make_shared<struct statfs>();
  Op op;
  op.syscall = "statfs";
  op.run = [=]() -> long { return SysResult(statfs(path.c_str(), buf.get())); };
  op.result = [buf](Napi::Env env, long) -> Napi::Value {
    Napi::Object o = Napi::Object::New(env);
    o.Set("type", Napi::Number::New(env, static_cast<double>(static_cast<uint64_t>(buf->f_type))));
    o.Set("bsize", Napi::Number::New(env, static_cast<double>(buf->f_bsize)));
    o.Set("blocks", Napi::Number::New(env, static_cast<double>(buf->f_blocks)));
    o.Set("bfree", Napi::Number::New(env, static_cast<double>(buf->f_bfree)));
    o.Set("bavail", Napi::Number::New(env, static_cast<double>(buf->f_bavail)));
    return o;
  };
  return op;
}

struct BlockDeviceInfo {
  uint64_t size = 0;
  int logical = 0;
  unsigned int physical = 0;
};

// (fd of a block device) → { size, logicalBlockSize, physicalBlockSize }; ENOTTY otherwise.
Op BuildBlockDevice(const Napi::CallbackInfo& info) {
  RequireArgs(info, 1, "blockDevice");
  int fd = ArgFd(info, 0);
  auto dev = std::make_shared<BlockDeviceInfo>();
  Op op;
  op.syscall = "ioctl";
  op.run = [=]() -> long {
    if (ioctl(fd, BLKGETSIZE64, &dev->size) < 0) return -errno;
    if (ioctl(fd, BLKSSZGET, &dev->logical) < 0) return -errno;
    if (ioctl(fd, BLKPBSZGET, &dev->physical) < 0) return -errno;
    return 0;
  };
  op.result = [dev](Napi::Env env, long) -> Napi::Value {
    Napi::Object o = Napi::Object::New(env);
    o.Set("size", Napi::Number::New(env, static_cast<double>(dev->size)));
    o.Set("logicalBlockSize", Napi::Number::New(env, dev->logical));
    o.Set("physicalBlockSize", Napi::Number::New(env, dev->physical));
    return o;
  };
  return op;
}

}  // namespace

void InitStat(Napi::Env env, Napi::Object exports) {
  ExportOp(env, exports, "statx", BuildStatx);
  ExportOp(env, exports, "statfs", BuildStatfs);
  ExportOp(env, exports, "blockDevice", BuildBlockDevice);
}

}  // namespace odirect
