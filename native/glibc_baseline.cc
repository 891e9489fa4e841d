// Keeps the addon loadable on glibc 2.28 (RHEL 8, the floor of Node 20's own binaries) when it
// is built against a newer glibc. test/package.test.ts checks the result with objdump -T.
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>

extern "C" {

// libstdc++'s headers (GCC 11+, glibc 2.32+) read glibc's `__libc_single_threaded` to skip
// atomic reference counting while a process has one thread; the reference would need
// GLIBC_2.32. This hidden copy takes those reads instead. It stays 0 ("more than one
// thread"), so the atomic path is always taken, as Node with its worker threads needs anyway.
__attribute__((visibility("hidden"))) char __libc_single_threaded = 0;

// libstdc++ is linked in statically (binding.gyp), and with it std::random_device, which
// odirect never uses but which refers to arc4random (GLIBC_2.36). This hidden stand-in
// answers from getrandom(2) (glibc 2.25) in case anything ever does call it.
__attribute__((visibility("hidden"))) uint32_t arc4random(void) {
  uint32_t value = 0;
  while (getrandom(&value, sizeof value, 0) != static_cast<ssize_t>(sizeof value)) {
  }
  return value;
}

// fstat became a real glibc symbol in 2.33 (fstat64@GLIBC_2.33); before, <sys/stat.h> turned
// it into __fxstat64. The fstat(2) system call is the same everywhere, and on 64-bit Linux its
// struct stat is glibc's struct stat64.
__attribute__((visibility("hidden"))) int fstat64(int fd, struct stat64* st) noexcept {
  return static_cast<int>(syscall(SYS_fstat, fd, st));
}

}
