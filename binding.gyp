{
  # What to build against libtorch (the sources by group, their definitions and
  # include folders, the flags and libraries) comes from scripts/find-libtorch.cjs,
  # as it does for CMakeLists.txt. gyp has no per-file definitions, so the
  # distributed group is a static library of its own.
  "target_defaults": {
    "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
    "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"],
    "cflags_cc": ["-std=c++17", "-O2", "-fPIC", "-fexceptions", "-frtti", "<!@(node scripts/find-libtorch.cjs --cflags)"]
  },
  "targets": [
    {
      "target_name": "vgg_torch_distributed",
      "type": "static_library",
      "sources": ["<!@(node scripts/find-libtorch.cjs --sources distributed)"],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!@(node scripts/find-libtorch.cjs --include-dirs distributed)"
      ],
      "defines": ["<!@(node scripts/find-libtorch.cjs --defines distributed)"]
    },
    {
      "target_name": "vgg_torch",
      "dependencies": ["vgg_torch_distributed"],
      "sources": ["<!@(node scripts/find-libtorch.cjs --sources addon)"],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!@(node scripts/find-libtorch.cjs --include-dirs addon)"
      ],
      "defines": ["<!@(node scripts/find-libtorch.cjs --defines addon)"],
      "libraries": ["<!@(node scripts/find-libtorch.cjs --libs)"]
    }
  ]
}
