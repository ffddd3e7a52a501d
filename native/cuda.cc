// CUDA: availability, devices, synchronisation, allocator statistics, cuDNN switches.
// Device queries go through ATen's CUDA hooks, which a CPU-only libtorch also
// has, so one source builds against every libtorch; the allocator statistics
// need c10_cuda and are compiled in only when the build found torch_cuda.
#include <ATen/Context.h>
#include <ATen/detail/CUDAHooksInterface.h>

#ifdef VGG_TORCH_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include "tensor.h"
#include "torch_compat.h"

namespace vggtorch {

namespace {

int DeviceIndex(const Napi::CallbackInfo& info, size_t i) {
  int count = at::detail::getCUDAHooks().getNumGPUs();
  if (!at::hasCUDA() || count == 0) {
    throw NativeError("CUDA is not available: this libtorch was built without CUDA or no GPU is visible");
  }
  int64_t index = info.Length() > i && !info[i].IsUndefined() && !info[i].IsNull()
                      ? ToInt(info[i], "device")
                      : at::detail::getCUDAHooks().current_device();
  if (index < 0 || index >= count) {
    throw RangeArgumentError("CUDA device " + std::to_string(index) + " does not exist (" + std::to_string(count) +
                             " visible)");
  }
  return static_cast<int>(index);
}

Napi::Value IsAvailable(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), at::hasCUDA() && at::detail::getCUDAHooks().getNumGPUs() > 0);
}

Napi::Value DeviceCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), at::hasCUDA() ? at::detail::getCUDAHooks().getNumGPUs() : 0);
}

Napi::Value Synchronize(const Napi::CallbackInfo& info) {
  at::detail::getCUDAHooks().deviceSynchronize(DeviceIndex(info, 0));
  return info.Env().Undefined();
}

Napi::Value MemoryAllocated(const Napi::CallbackInfo& info) {
  int device = DeviceIndex(info, 0);
#ifdef VGG_TORCH_WITH_CUDA
#if VGG_TORCH_CUDA_STATS_BY_DEVICE_INDEX
  auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(device));
#else
  auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device);
#endif
  using c10::cuda::CUDACachingAllocator::StatType;
  return Napi::Number::New(
      info.Env(), static_cast<double>(stats.allocated_bytes[static_cast<size_t>(StatType::AGGREGATE)].current));
#else
  (void)device;
  throw NativeError("memoryAllocated(): this build of vgg-torch was compiled without CUDA support");
#endif
}

// torch.cuda.get_rng_state / set_rng_state, through Context::defaultGenerator,
// which every libtorch version has (the CUDA hooks' name for it changed in 2.x).
Napi::Value GetCudaRngState(const Napi::CallbackInfo& info) {
  auto gen = at::globalContext().defaultGenerator(
      c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(DeviceIndex(info, 0))));
  std::lock_guard<std::mutex> lock(gen.mutex());
  return WrapTensor(info.Env(), gen.get_state());
}

Napi::Value SetCudaRngState(const Napi::CallbackInfo& info) {
  const at::Tensor& state = UnwrapTensor(info[0], "state");
  TORCH_CHECK(state.scalar_type() == at::kByte && state.device().is_cpu(),
              "CUDA RNG state must be a uint8 CPU tensor, got ", state.scalar_type(), " on ", state.device());
  auto gen = at::globalContext().defaultGenerator(
      c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(DeviceIndex(info, 1))));
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
  return info.Env().Undefined();
}

Napi::Value SetCudnnBenchmark(const Napi::CallbackInfo& info) {
  at::globalContext().setBenchmarkCuDNN(ToBool(info[0], "enabled"));
  return info.Env().Undefined();
}

Napi::Value GetCudnnBenchmark(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), at::globalContext().benchmarkCuDNN());
}

Napi::Value CudnnAvailable(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), at::globalContext().hasCuDNN());
}

Napi::Value CompiledWithCuda(const Napi::CallbackInfo& info) {
#ifdef VGG_TORCH_WITH_CUDA
  return Napi::Boolean::New(info.Env(), true);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

}  // namespace

void InitCuda(Napi::Env env, Napi::Object exports) {
  Export<IsAvailable>(env, exports, "cudaIsAvailable");
  Export<DeviceCount>(env, exports, "cudaDeviceCount");
  Export<Synchronize>(env, exports, "cudaSynchronize");
  Export<MemoryAllocated>(env, exports, "cudaMemoryAllocated");
  Export<GetCudaRngState>(env, exports, "cudaGetRngState");
  Export<SetCudaRngState>(env, exports, "cudaSetRngState");
  Export<SetCudnnBenchmark>(env, exports, "setCudnnBenchmark");
  Export<GetCudnnBenchmark>(env, exports, "getCudnnBenchmark");
  Export<CudnnAvailable>(env, exports, "cudnnAvailable");
  Export<CompiledWithCuda>(env, exports, "compiledWithCuda");
}

}  // namespace vggtorch
