// Process runtime: random number generators and intra-op threads.
#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <ATen/core/Generator.h>

#include <sched.h>

#include "tensor.h"

namespace vggtorch {

namespace {

// Like torch.manual_seed: the CPU generator and every CUDA device's.
Napi::Value ManualSeed(const Napi::CallbackInfo& info) {
  int64_t seed = ToInt(info[0], "seed");
  at::manual_seed(static_cast<uint64_t>(seed));
  return info.Env().Undefined();
}

Napi::Value InitialSeed(const Napi::CallbackInfo& info) {
  auto gen = at::detail::getDefaultCPUGenerator();
  return Napi::BigInt::New(info.Env(), static_cast<uint64_t>(gen.current_seed()));
}

// The CPU generator's state as a uint8 tensor, byte-identical to torch.get_rng_state().
Napi::Value GetRngState(const Napi::CallbackInfo& info) {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return WrapTensor(info.Env(), gen.get_state());
}

Napi::Value SetRngState(const Napi::CallbackInfo& info) {
  const at::Tensor& state = UnwrapTensor(info[0], "state");
  TORCH_CHECK(state.scalar_type() == at::kByte && state.device().is_cpu(),
              "RNG state must be a uint8 CPU tensor, got ", state.scalar_type(), " on ", state.device());
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
  return info.Env().Undefined();
}

int UsableCores() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  int64_t n = ToInt(info[0], "threads");
  if (n < 1) throw Napi::RangeError::New(info.Env(), "setNumThreads(): threads must be at least 1, got " + std::to_string(n));
  at::set_num_threads(static_cast<int>(n));
  return info.Env().Undefined();
}

Napi::Value GetNumThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), at::get_num_threads());
}

Napi::Value UsableCoreCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), UsableCores());
}

Napi::Value ParallelInfo(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), at::get_parallel_info());
}

}  // namespace

void InitRuntime(Napi::Env env, Napi::Object exports) {
  Export<ManualSeed>(env, exports, "manualSeed");
  Export<InitialSeed>(env, exports, "initialSeed");
  Export<GetRngState>(env, exports, "getRngState");
  Export<SetRngState>(env, exports, "setRngState");
  Export<SetNumThreads>(env, exports, "setNumThreads");
  Export<GetNumThreads>(env, exports, "getNumThreads");
  Export<UsableCoreCount>(env, exports, "usableCores");
  Export<ParallelInfo>(env, exports, "parallelInfo");
}

}  // namespace vggtorch
