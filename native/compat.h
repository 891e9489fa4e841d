// Kernel constants and structures newer than Debian 12's headers (linux 6.1 uapi).
// Every definition is guarded so newer headers win. Values: include/uapi/linux/fs.h,
// include/uapi/linux/stat.h (see docs/kernel-facts.md §1–§3).
#pragma once

#include <cstddef>
#include <cstdint>
#include <linux/fs.h>
#include <linux/stat.h>

// pwritev2/preadv2 flags (RWF_*).
#ifndef RWF_HIPRI
#define RWF_HIPRI 0x00000001
#endif
#ifndef RWF_DSYNC
#define RWF_DSYNC 0x00000002
#endif
#ifndef RWF_SYNC
#define RWF_SYNC 0x00000004
#endif
#ifndef RWF_NOWAIT
#define RWF_NOWAIT 0x00000008
#endif
#ifndef RWF_APPEND
#define RWF_APPEND 0x00000010
#endif
#ifndef RWF_NOAPPEND
#define RWF_NOAPPEND 0x00000020  // 6.9
#endif
#ifndef RWF_ATOMIC
#define RWF_ATOMIC 0x00000040  // 6.11 block devices, 6.13 filesystems
#endif
#ifndef RWF_DONTCACHE
#define RWF_DONTCACHE 0x00000080  // 6.14; RWF_UNCACHED in the pre-merge series
#endif
#ifndef RWF_NOSIGNAL
#define RWF_NOSIGNAL 0x00000100  // 6.18
#endif

// statx request mask and attribute bits.
#ifndef STATX_DIOALIGN
#define STATX_DIOALIGN 0x00002000U  // 6.1
#endif
#ifndef STATX_WRITE_ATOMIC
#define STATX_WRITE_ATOMIC 0x00010000U  // 6.11
#endif
#ifndef STATX_DIO_READ_ALIGN
#define STATX_DIO_READ_ALIGN 0x00020000U  // 6.14
#endif
#ifndef STATX_ATTR_DAX
#define STATX_ATTR_DAX 0x00200000  // 5.8
#endif
#ifndef STATX_ATTR_WRITE_ATOMIC
#define STATX_ATTR_WRITE_ATOMIC 0x00400000  // 6.11
#endif

// The whole 256-byte struct statx as of 6.16, under our own name so the system
// header's older definition cannot shadow the new fields. The kernel fills only
// what it knows and what stx_mask reports; the rest stays as we zeroed it.
struct odirect_statx_timestamp {
  int64_t tv_sec;
  uint32_t tv_nsec;
  int32_t reserved;
};

struct odirect_statx {
  uint32_t stx_mask;
  uint32_t stx_blksize;
  uint64_t stx_attributes;
  uint32_t stx_nlink;
  uint32_t stx_uid;
  uint32_t stx_gid;
  uint16_t stx_mode;
  uint16_t spare0;
  uint64_t stx_ino;
  uint64_t stx_size;
  uint64_t stx_blocks;
  uint64_t stx_attributes_mask;
  odirect_statx_timestamp stx_atime, stx_btime, stx_ctime, stx_mtime;
  uint32_t stx_rdev_major;
  uint32_t stx_rdev_minor;
  uint32_t stx_dev_major;
  uint32_t stx_dev_minor;
  uint64_t stx_mnt_id;
  uint32_t stx_dio_mem_align;
  uint32_t stx_dio_offset_align;
  uint64_t stx_subvol;
  uint32_t stx_atomic_write_unit_min;
  uint32_t stx_atomic_write_unit_max;
  uint32_t stx_atomic_write_segments_max;
  uint32_t stx_dio_read_offset_align;
  uint32_t stx_atomic_write_unit_max_opt;
  uint32_t spare2;
  uint64_t spare3[8];
};

static_assert(offsetof(odirect_statx, stx_mnt_id) == 0x90, "statx layout");
static_assert(offsetof(odirect_statx, stx_dio_mem_align) == 0x98, "statx layout");
static_assert(offsetof(odirect_statx, stx_dio_offset_align) == 0x9c, "statx layout");
static_assert(offsetof(odirect_statx, stx_subvol) == 0xa0, "statx layout");
static_assert(offsetof(odirect_statx, stx_atomic_write_unit_min) == 0xa8, "statx layout");
static_assert(offsetof(odirect_statx, stx_atomic_write_unit_max) == 0xac, "statx layout");
static_assert(offsetof(odirect_statx, stx_atomic_write_segments_max) == 0xb0, "statx layout");
static_assert(offsetof(odirect_statx, stx_dio_read_offset_align) == 0xb4, "statx layout");
static_assert(offsetof(odirect_statx, stx_atomic_write_unit_max_opt) == 0xb8, "statx layout");
static_assert(sizeof(odirect_statx) == 0x100, "statx size");

