{
  "targets": [
    {
      # liburing, vendored in deps/liburing (see deps/liburing/VENDORED.md), built here as a
      # static library so that installing odirect needs no system liburing, at build or run time.
      "target_name": "uring",
      "type": "static_library",
      "sources": [
        "deps/liburing/src/setup.c",
        "deps/liburing/src/queue.c",
        "deps/liburing/src/register.c",
        "deps/liburing/src/syscall.c",
        "deps/liburing/src/version.c"
      ],
      "include_dirs": ["deps/liburing/src/include"],
      "defines": ["_GNU_SOURCE", "_LARGEFILE_SOURCE", "_FILE_OFFSET_BITS=64", "LIBURING_INTERNAL"],
      # The flags of liburing's own src/Makefile.
      "cflags": ["-O3", "-fPIC", "-Wno-unused-parameter", "-fno-stack-protector"],
      "cflags!": ["-fno-omit-frame-pointer"],
      "conditions": [
        # liburing's configure enables its nolibc mode on these architectures (raw syscalls,
        # no libc calls at all); elsewhere it uses libc.
        ["target_arch=='x64' or target_arch=='arm64'", {
          "sources": ["deps/liburing/src/nolibc.c"],
          "defines": ["CONFIG_NOLIBC"],
          "cflags": ["-ffreestanding", "-fno-builtin"]
        }]
      ],
      "direct_dependent_settings": {
        "include_dirs": ["deps/liburing/src/include"]
      }
    },
    {
      "target_name": "odirect",
      "sources": [
        "native/addon.cc",
        "native/args.cc",
        "native/errors.cc",
        "native/errno_names.cc",
        "native/file.cc",
        "native/glibc_baseline.cc",
        "native/io.cc",
        "native/memory.cc",
        "native/op.cc",
        "native/owned.cc",
        "native/stat.cc",
        "native/uring.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "dependencies": [
        "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except",
        "uring"
      ],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      # The prebuilds must load on glibc 2.28 (RHEL 8, Node 20's floor): libstdc++ is linked
      # in (GCC 12's wants GLIBCXX_3.4.29), its symbols kept local to the addon, and
      # native/glibc_baseline.cc covers the glibc symbols newer than 2.28 that libstdc++ and
      # newer glibc headers pull in.
      # libgcc stays shared: its static unwinder wants _dl_find_object (GLIBC_2.35).
      # test/package.test.ts checks the highest GLIBC version with objdump -T.
      "ldflags": ["-static-libstdc++", "-Wl,--exclude-libs,ALL"]
    },
    {
      # The filesystem shutdown ioctl, apart from the addon every user loads: only
      # verify-atomic's crash cycles and the tests load it (lib/scratch/shutdown-addon.ts).
      # A shared library (build/Release/odirect_shutdown.so), not a .node
      # loadable module: node-gyp-build and prebuildify load the first .node file they
      # find in build/Release, which must be the main addon.
      "target_name": "odirect_shutdown",
      "type": "shared_library",
      "sources": [
        "native/shutdown.cc",
        "native/args.cc",
        "native/errors.cc",
        "native/errno_names.cc",
        "native/op.cc",
        "native/owned.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
