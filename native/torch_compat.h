// What differs between the libtorch versions vgg-torch builds against (1.13 and
// every 2.x release), in one place: the rest of native/ is written once. Each
// switch names the release that changed the API, from torch/version.h.
#pragma once

#include <torch/version.h>

#define VGG_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

// ---- CUDA (native/cuda.cc) ---------------------------------------------------
// 2.1: CUDACachingAllocator::getDeviceStats takes a c10::DeviceIndex, not an int.
#define VGG_TORCH_CUDA_STATS_BY_DEVICE_INDEX VGG_TORCH_AT_LEAST(2, 1)

// ---- c10d (native/distributed.cc) ------------------------------------------
// 2.0: a ProcessGroup is a front holding one Backend per device type;
// ProcessGroupGloo and ProcessGroupNCCL became Backends. Python's
// _new_process_group_helper stores a group under PrefixStore("<name>/") and
// each backend under PrefixStore("<device>/") inside it, and sets the
// sequence number on the backend as it is made.
#define VGG_TORCH_C10D_BACKENDS VGG_TORCH_AT_LEAST(2, 0)
// 2.0 to 2.5 build the front from ProcessGroup::Options (backend name,
// timeout); 2.6 dropped them for setDefaultBackend().
#define VGG_TORCH_C10D_PG_OPTIONS (VGG_TORCH_C10D_BACKENDS && !VGG_TORCH_AT_LEAST(2, 6))
// 2.1: init_process_group/new_group end with the store-based barrier only
// when TORCH_DIST_INIT_BARRIER=1, keyed by the group's name, and the last
// rank in sets "<key>:last_worker". Before 2.1 the barrier always ran, keyed
// by the group count, polling the count.
#define VGG_TORCH_C10D_BARRIER_OPT_IN VGG_TORCH_AT_LEAST(2, 1)
// 2.2: TCPStoreOptions::useLibUV (the libuv server); true by default from
// 2.4, and a libtorch built without libuv refuses it.
#define VGG_TORCH_C10D_STORE_LIBUV VGG_TORCH_AT_LEAST(2, 2)
// 2.2: ProcessGroup::setGroupName (Python's pg._set_group_name).
#define VGG_TORCH_C10D_GROUP_NAME VGG_TORCH_AT_LEAST(2, 2)
// 2.14: sequence numbers are gone from Python's group creation (the Backend's
// setter only warns).
#define VGG_TORCH_C10D_SEQUENCE_NUMBERS !VGG_TORCH_AT_LEAST(2, 14)
// Gloo's allreduce takes bfloat16 from 2.2 (read in its source; 2.0 lacks it,
// 2.1 unread): before, bf16CompressHook's allreduce fails with "Invalid scalar type".
#define VGG_TORCH_GLOO_BFLOAT16 VGG_TORCH_AT_LEAST(2, 2)

// ---- autocast (native/amp.cc) -----------------------------------------------
// 2.4: autocast state is read and set per device type
// (is_autocast_enabled(DeviceType), get/set_autocast_dtype(DeviceType, ...));
// the per-device names of 1.13 (is_cpu_enabled, set_autocast_gpu_dtype, ...)
// stay only as deprecated wrappers.
#define VGG_TORCH_AUTOCAST_BY_DEVICE VGG_TORCH_AT_LEAST(2, 4)

#include <ATen/autocast_mode.h>

namespace vggtorch::compat {

// `device` is CPU or CUDA (amp.cc refuses any other).
inline bool IsAutocastEnabled(c10::DeviceType device) {
#if VGG_TORCH_AUTOCAST_BY_DEVICE
  return at::autocast::is_autocast_enabled(device);
#else
  return device == c10::DeviceType::CPU ? at::autocast::is_cpu_enabled() : at::autocast::is_enabled();
#endif
}

inline void SetAutocastEnabled(c10::DeviceType device, bool enabled) {
#if VGG_TORCH_AUTOCAST_BY_DEVICE
  at::autocast::set_autocast_enabled(device, enabled);
#else
  if (device == c10::DeviceType::CPU) {
    at::autocast::set_cpu_enabled(enabled);
  } else {
    at::autocast::set_enabled(enabled);
  }
#endif
}

inline at::ScalarType GetAutocastDtype(c10::DeviceType device) {
#if VGG_TORCH_AUTOCAST_BY_DEVICE
  return at::autocast::get_autocast_dtype(device);
#else
  return device == c10::DeviceType::CPU ? at::autocast::get_autocast_cpu_dtype()
                                        : at::autocast::get_autocast_gpu_dtype();
#endif
}

inline void SetAutocastDtype(c10::DeviceType device, at::ScalarType dtype) {
#if VGG_TORCH_AUTOCAST_BY_DEVICE
  at::autocast::set_autocast_dtype(device, dtype);
#else
  if (device == c10::DeviceType::CPU) {
    at::autocast::set_autocast_cpu_dtype(dtype);
  } else {
    at::autocast::set_autocast_gpu_dtype(dtype);
  }
#endif
}

}  // namespace vggtorch::compat

// ---- CPU kernels and ISA (native/runtime.cc) --------------------------------
// 2.1: at::get_cpu_capability() (ATen/Version.h, torch.backends.cpu.get_cpu_capability)
// names the ATen CPU kernel level. Before, libtorch says it only inside
// at::show_config(), in the line "CPU capability usage: <level>", with the
// same names (Version.cpp's used_cpu_capability).
#define VGG_TORCH_CPU_CAPABILITY_API VGG_TORCH_AT_LEAST(2, 1)
// 2.4: ATen/cpu/Utils.h's cpuinfo checks at::cpu::is_avx512_bf16_supported()
// and is_amx_tile_supported() (torch.cpu._is_avx512_bf16_supported,
// _is_amx_tile_supported). Verified on 2.6; 1.13 has no such header (and no
// cpuinfo headers to call it ourselves). From 2.4, unverified. They are gone
// again in 2.13 (replaced by get_cpu_capabilities(), a map), so whether they
// are declared is detected below rather than assumed from the version.
#define VGG_TORCH_CPU_ISA_CHECKS VGG_TORCH_AT_LEAST(2, 4)

#include <ATen/Version.h>
#if VGG_TORCH_CPU_ISA_CHECKS
#include <ATen/cpu/Utils.h>
#endif
#include <optional>
#include <string>

namespace vggtorch::compat {

inline std::string CpuCapability() {
#if VGG_TORCH_CPU_CAPABILITY_API
  return at::get_cpu_capability();
#else
  const std::string config = at::show_config();
  const std::string key = "CPU capability usage: ";
  auto pos = config.find(key);
  if (pos == std::string::npos) return "";
  pos += key.size();
  return config.substr(pos, config.find('\n', pos) - pos);
#endif
}

// libtorch's own answer to "does this CPU compute bfloat16 natively": {AVX512_BF16,
// AMX tiles}, or nullopt where this libtorch cannot say.
struct Bf16Isa {
  bool avx512bf16;
  bool amxTile;
};
#if VGG_TORCH_CPU_ISA_CHECKS
// Stand-ins that qualified lookup in at::cpu finds only where libtorch declares no
// function of that name (a using-directive is searched only then).
namespace detect {
struct Missing {};
template <typename... A>
Missing is_avx512_bf16_supported(A...) {
  return {};
}
template <typename... A>
Missing is_amx_tile_supported(A...) {
  return {};
}
inline std::optional<bool> Answer(bool found) { return found; }
inline std::optional<bool> Answer(Missing) { return std::nullopt; }
}  // namespace detect
}  // namespace vggtorch::compat
namespace at::cpu {
using namespace vggtorch::compat::detect;  // the stand-ins above, for lookup only
}  // namespace at::cpu
namespace vggtorch::compat {
#endif

inline std::optional<Bf16Isa> CpuBf16Isa() {
#if VGG_TORCH_CPU_ISA_CHECKS
  auto avx512bf16 = detect::Answer(at::cpu::is_avx512_bf16_supported());
  auto amxTile = detect::Answer(at::cpu::is_amx_tile_supported());
  if (avx512bf16 && amxTile) return Bf16Isa{*avx512bf16, *amxTile};
#endif
  return std::nullopt;
}

}  // namespace vggtorch::compat

#ifdef VGG_TORCH_WITH_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/reducer.hpp>

#include <chrono>
#include <initializer_list>
#include <memory>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <vector>

namespace vggtorch::compat {

// c10d::Reducer as DDP's Python makes it, with the constructor this libtorch
// has. Its arguments changed in releases whose headers could not all be read
// here, so the shape is detected rather than guessed from the version:
// 1.13-2.6 take the per-bucket size limits; 2.7 dropped them; later releases
// add skip_all_reduce_unused_params and use_python_reducer (false, as in
// Python), then bucket_bytes_cap_list (empty: the Reducer's own rebuild rule).
inline std::shared_ptr<c10d::Reducer> MakeReducer(std::vector<at::Tensor> params,
                                                  std::vector<std::vector<size_t>> buckets, std::vector<size_t> limits,
                                                  c10::intrusive_ptr<c10d::ProcessGroup> pg, std::vector<bool> sparse,
                                                  int64_t cap, bool findUnused, bool asView,
                                                  std::unordered_map<size_t, std::string> names, int64_t firstCap) {
  using R = c10d::Reducer;
  using Params = std::vector<at::Tensor>;
  using Buckets = std::vector<std::vector<size_t>>;
  using Limits = std::vector<size_t>;
  using Pg = c10::intrusive_ptr<c10d::ProcessGroup>;
  using Names = std::unordered_map<size_t, std::string>;
  if constexpr (std::is_constructible_v<R, Params, Buckets, Limits, Pg, std::vector<bool>, int64_t, bool, bool, Names,
                                        int64_t>) {
    return std::make_shared<R>(params, buckets, limits, pg, sparse, cap, findUnused, asView, names, firstCap);
  } else if constexpr (std::is_constructible_v<R, Params, Buckets, Pg, std::vector<bool>, int64_t, bool, bool, Names,
                                               int64_t>) {
    return std::make_shared<R>(params, buckets, pg, sparse, cap, findUnused, asView, names, firstCap);
  } else if constexpr (std::is_constructible_v<R, Params, Buckets, Pg, std::vector<bool>, int64_t, bool, bool, Names,
                                               int64_t, bool, bool>) {
    return std::make_shared<R>(params, buckets, pg, sparse, cap, findUnused, asView, names, firstCap, false, false);
  } else {
    return std::make_shared<R>(params, buckets, pg, sparse, cap, findUnused, asView, names, firstCap, false, false,
                               std::vector<int64_t>{});
  }
}

#if VGG_TORCH_C10D_BACKENDS

// The ProcessGroup front over one backend, registered for `devices`, as
// Python's _new_process_group_helper makes it.
inline c10::intrusive_ptr<c10d::ProcessGroup> GroupOver(const c10::intrusive_ptr<c10d::Store>& store, int rank,
                                                        int size, c10d::ProcessGroup::BackendType type,
                                                        const std::string& backendName,
                                                        const c10::intrusive_ptr<c10d::Backend>& backend,
                                                        std::initializer_list<c10::DeviceType> devices,
                                                        std::chrono::milliseconds timeout, const std::string& name) {
#if VGG_TORCH_C10D_PG_OPTIONS
  auto options = c10::make_intrusive<c10d::ProcessGroup::Options>(backendName, timeout);
  auto pg = c10::make_intrusive<c10d::ProcessGroup>(store, rank, size, options);
#else
  auto pg = c10::make_intrusive<c10d::ProcessGroup>(store, rank, size);
  pg->setDefaultBackend(type);
#endif
  for (c10::DeviceType d : devices) pg->setBackend(d, type, backend);
#if VGG_TORCH_C10D_GROUP_NAME
  pg->setGroupName(name);
#endif
  return pg;
}

#endif  // VGG_TORCH_C10D_BACKENDS

}  // namespace vggtorch::compat
#endif  // VGG_TORCH_WITH_GLOO
