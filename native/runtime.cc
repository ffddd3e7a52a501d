// Process runtime: random number generators and intra-op threads.
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <ATen/core/Generator.h>

#include <sched.h>

#include "tensor.h"
#include "torch_compat.h"

namespace vggtorch {

namespace {

// A torch.Generator held by JS: an External owning one reference to the
// generator, tagged so that no other External can pass for one. Operators take
// it in their `Generator?` argument (ops.cc), so a generator's state never has
// to be copied in and out of the default generator.
const napi_type_tag kGeneratorTag = {0x7667677467656e31ULL, 0x43505547656e6572ULL};

// torch.Generator(): a CPU generator with c10's default seed.
Napi::Value NewGenerator(const Napi::CallbackInfo& info) {
  auto ext = Napi::External<at::Generator>::New(info.Env(), new at::Generator(at::detail::createCPUGenerator()),
                                                [](Napi::Env, at::Generator* g) { delete g; });
  ext.TypeTag(&kGeneratorTag);
  return ext;
}

// The generator argument at `i`: a JS generator handle, or the default CPU
// generator when it is absent (the global stream, as torch.manual_seed uses).
at::Generator GeneratorAt(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || info[i].IsUndefined() || info[i].IsNull()) return at::detail::getDefaultCPUGenerator();
  const at::Generator* g = UnwrapGenerator(info[i]);
  if (!g) throw ArgumentError("generator must be a Generator handle, got " + Shown(info[i]));
  return *g;
}

// Like torch.manual_seed (no generator: the CPU generator and every CUDA
// device's) or Generator.manual_seed.
Napi::Value ManualSeed(const Napi::CallbackInfo& info) {
  int64_t seed = ToInt(info[0], "seed");
  if (info.Length() <= 1 || info[1].IsUndefined() || info[1].IsNull()) {
    at::manual_seed(static_cast<uint64_t>(seed));
  } else {
    at::Generator gen = GeneratorAt(info, 1);
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_current_seed(static_cast<uint64_t>(seed));
  }
  return info.Env().Undefined();
}

Napi::Value InitialSeed(const Napi::CallbackInfo& info) {
  at::Generator gen = GeneratorAt(info, 0);
  return Napi::BigInt::New(info.Env(), static_cast<uint64_t>(gen.current_seed()));
}

// A CPU generator's state as a uint8 tensor, byte-identical to torch.get_rng_state()
// or Generator.get_state().
Napi::Value GetRngState(const Napi::CallbackInfo& info) {
  at::Generator gen = GeneratorAt(info, 0);
  std::lock_guard<std::mutex> lock(gen.mutex());
  return WrapTensor(info.Env(), gen.get_state());
}

Napi::Value SetRngState(const Napi::CallbackInfo& info) {
  const at::Tensor& state = UnwrapTensor(info[0], "state");
  TORCH_CHECK(state.scalar_type() == at::kByte && state.device().is_cpu(), "RNG state must be a uint8 CPU tensor, got ",
              state.scalar_type(), " on ", state.device());
  at::Generator gen = GeneratorAt(info, 1);
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
  if (n < 1) throw RangeArgumentError("setNumThreads(): threads must be at least 1, got " + std::to_string(n));
  at::set_num_threads(static_cast<int>(n));
  return info.Env().Undefined();
}

Napi::Value GetNumThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), at::get_num_threads());
}

Napi::Value UsableCoreCount(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), UsableCores()); }

}  // namespace

const at::Generator* UnwrapGenerator(const Napi::Value& v) {
  if (!v.IsExternal()) return nullptr;
  auto ext = v.As<Napi::External<at::Generator>>();
  return ext.CheckTypeTag(&kGeneratorTag) ? ext.Data() : nullptr;
}

// torch.backends.quantized.engine: the names Python uses.
namespace {
std::string QEngineName(at::QEngine e) {
  switch (e) {
    case at::QEngine::FBGEMM: return "fbgemm";
    case at::QEngine::QNNPACK: return "qnnpack";
    case at::QEngine::ONEDNN: return "onednn";
    case at::QEngine::X86: return "x86";
    default: return "none";
  }
}

Napi::Value QuantizedEngine(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), QEngineName(at::globalContext().qEngine()));
}

Napi::Value SupportedQuantizedEngines(const Napi::CallbackInfo& info) {
  const auto& engines = at::globalContext().supportedQEngines();
  auto arr = Napi::Array::New(info.Env(), engines.size());
  for (size_t i = 0; i < engines.size(); i++) arr.Set(i, Napi::String::New(info.Env(), QEngineName(engines[i])));
  return arr;
}

Napi::Value SetQuantizedEngine(const Napi::CallbackInfo& info) {
  std::string name = ToString(info[0], "engine");
  std::string known;
  for (auto e : at::globalContext().supportedQEngines()) {
    if (QEngineName(e) == name) {
      at::globalContext().setQEngine(e);
      return info.Env().Undefined();
    }
    known += (known.empty() ? "" : ", ") + QEngineName(e);
  }
  throw RangeArgumentError("quantized engine '" + name + "' is not in this libtorch (it has: " + known + ")");
}
// The libtorch version built against (torch/version.h), as torch.__version__ reads
// for the same release ("2.6.0"); the addon's rpath loads that libtorch.
Napi::Value TorchVersion(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), TORCH_VERSION); }

// torch.backends.cpu.get_cpu_capability(): the ATen kernel level ("AVX2", "AVX512", "NO AVX", …).
Napi::Value CpuCapability(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), compat::CpuCapability());
}

// {avx512bf16, amxTile} from libtorch's cpuinfo checks, or null where this libtorch has none.
Napi::Value CpuBf16Isa(const Napi::CallbackInfo& info) {
  auto isa = compat::CpuBf16Isa();
  if (!isa) return info.Env().Null();
  auto o = Napi::Object::New(info.Env());
  o.Set("avx512bf16", isa->avx512bf16);
  o.Set("amxTile", isa->amxTile);
  return o;
}
}  // namespace

void InitRuntime(Napi::Env env, Napi::Object exports) {
  Export<QuantizedEngine>(env, exports, "quantizedEngine");
  Export<SupportedQuantizedEngines>(env, exports, "supportedQuantizedEngines");
  Export<SetQuantizedEngine>(env, exports, "setQuantizedEngine");
  Export<ManualSeed>(env, exports, "manualSeed");
  Export<InitialSeed>(env, exports, "initialSeed");
  Export<GetRngState>(env, exports, "getRngState");
  Export<SetRngState>(env, exports, "setRngState");
  Export<SetNumThreads>(env, exports, "setNumThreads");
  Export<GetNumThreads>(env, exports, "getNumThreads");
  Export<UsableCoreCount>(env, exports, "usableCores");
  Export<NewGenerator>(env, exports, "newGenerator");
  Export<TorchVersion>(env, exports, "torchVersion");
  Export<CpuCapability>(env, exports, "cpuCapability");
  Export<CpuBf16Isa>(env, exports, "cpuBf16Isa");
}

}  // namespace vggtorch
