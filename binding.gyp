{
  "targets": [
    {
      "target_name": "odirect",
      "sources": [
        "native/addon.cc",
        "native/args.cc",
        "native/errors.cc",
        "native/file.cc",
        "native/io.cc",
        "native/memory.cc",
        "native/op.cc",
        "native/owned.cc",
        "native/stat.cc",
        "native/uring.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "libraries": ["-l:liburing.a"]
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
