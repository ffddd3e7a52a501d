// Entry point: one AddonState per JS environment (main thread or worker).
#include "tensor.h"

namespace vggtorch {

AddonState& State(Napi::Env env) { return *env.GetInstanceData<AddonState>(); }

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new AddonState());
  InitTensor(env, exports);
  InitOps(env, exports);
  InitAutograd(env, exports);
  InitRuntime(env, exports);
  InitCuda(env, exports);
  InitPyMath(env, exports);
  InitJit(env, exports);
  InitDistributed(env, exports);
  InitAmp(env, exports);
  return exports;
}

}  // namespace vggtorch

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return vggtorch::Init(env, exports); }

NODE_API_MODULE(vgg_torch, InitAddon)
