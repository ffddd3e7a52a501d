{
  "targets": [
    {
      "target_name": "vgg_torch",
      "sources": [
        "native/addon.cc",
        "native/autograd.cc",
        "native/cuda.cc",
        "native/jit.cc",
        "native/ops.cc",
        "native/pymath.cc",
        "native/runtime.cc",
        "native/tensor.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!@(node scripts/find-libtorch.cjs --include-dirs)"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-O2", "-fexceptions", "-frtti", "<!@(node scripts/find-libtorch.cjs --cflags)"],
      "libraries": ["<!@(node scripts/find-libtorch.cjs --libs)"]
    }
  ]
}
