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
    }
  ]
}
