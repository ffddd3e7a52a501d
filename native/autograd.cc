// Autograd: libtorch's own engine and grad-mode switches, exposed handle by handle.
#include <c10/core/GradMode.h>
#include <c10/core/InferenceMode.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/variable.h>

#include "tensor.h"

#include <memory>
#include <thread>

namespace vggtorch {

namespace {

// Tensor hooks in JS (Tensor.registerHook). libtorch's engine runs the backward
// of a CPU graph on the thread that called backward(), so a hook runs the JS
// function synchronously inside native.backward. A JS exception is parked here
// (the engine only carries C++ exceptions) and rethrown as itself by Backward.
thread_local std::unique_ptr<Napi::Error> pendingHookError;

void RethrowHookError() {
  if (!pendingHookError) return;
  Napi::Error e = std::move(*pendingHookError);
  pendingHookError.reset();
  throw e;
}

struct JsHook {
  Napi::FunctionReference fn;
  napi_env env;
  std::thread::id owner = std::this_thread::get_id();
  std::weak_ptr<Accounting> alive;  // gone once the environment is torn down
  ~JsHook() {
    // The reference may only be released on its own thread while the environment lives.
    if (std::this_thread::get_id() != owner || alive.expired()) fn.SuppressDestruct();
  }
};

at::Tensor RunJsHook(const std::shared_ptr<JsHook>& h, const at::Tensor& grad) {
  TORCH_CHECK(std::this_thread::get_id() == h->owner && !h->alive.expired(),
              "a JS tensor hook cannot run off the JS thread (backward of a non-CPU graph)");
  TORCH_CHECK(!pendingHookError, "a tensor hook already failed in this backward");
  Napi::Env env(h->env);
  Napi::HandleScope scope(env);
  Napi::Value result;
  try {
    result = h->fn.Call({WrapTensor(env, grad)});
  } catch (const Napi::Error& e) {
    pendingHookError = std::make_unique<Napi::Error>(e);
    TORCH_CHECK(false, "a tensor hook threw");
  }
  if (result.IsUndefined() || result.IsNull()) return at::Tensor();
  return UnwrapTensor(result, "hook result");
}

// registerHook(tensor, fn) -> hook index for removeHook
Napi::Value RegisterHook(const Napi::CallbackInfo& info) {
  const at::Tensor& t = UnwrapTensor(info[0], "tensor");
  if (!info[1].IsFunction())
    throw ArgumentError("registerHook(): argument 'hook' must be a function, got " + Shown(info[1]));
  TORCH_CHECK(t.requires_grad(), "cannot register a hook on a tensor that doesn't require gradient");
  // CUDA backward runs on the engine's device threads, where JS cannot be called.
  if (!t.device().is_cpu()) {
    throw NativeError("registerHook(): hooks are supported on CPU tensors only (the backward of a " + t.device().str() +
                      " tensor runs on a libtorch worker thread), got a tensor on " + t.device().str());
  }
  auto h = std::make_shared<JsHook>();
  h->fn = Napi::Persistent(info[1].As<Napi::Function>());
  h->env = info.Env();
  h->alive = State(info.Env()).accounting;
  unsigned pos = t.register_hook([h](at::Tensor grad) { return RunJsHook(h, grad); });
  return Napi::Number::New(info.Env(), pos);
}

Napi::Value RemoveHook(const Napi::CallbackInfo& info) {
  UnwrapTensor(info[0], "tensor").remove_hook(static_cast<unsigned>(ToInt(info[1], "handle")));
  return info.Env().Undefined();
}

// backward(tensor, gradient|null, retainGraph|undefined, createGraph)
Napi::Value Backward(const Napi::CallbackInfo& info) {
  const at::Tensor& t = UnwrapTensor(info[0], "tensor");
  at::Tensor gradient;
  if (!info[1].IsNull() && !info[1].IsUndefined()) gradient = UnwrapTensor(info[1], "gradient");
  c10::optional<bool> retain;
  if (!info[2].IsUndefined() && !info[2].IsNull()) retain = ToBool(info[2], "retainGraph");
  bool create = info[3].IsUndefined() ? false : ToBool(info[3], "createGraph");
  pendingHookError.reset();  // a failure left by a backward that did not come through here
  try {
    t.backward(gradient, retain, create);
  } catch (...) {
    RethrowHookError();
    throw;
  }
  return info.Env().Undefined();
}

Napi::Value Grad(const Napi::CallbackInfo& info) {
  return WrapTensor(info.Env(), UnwrapTensor(info[0], "tensor").grad());
}

Napi::Value SetGrad(const Napi::CallbackInfo& info) {
  const at::Tensor& t = UnwrapTensor(info[0], "tensor");
  if (info[1].IsNull() || info[1].IsUndefined()) {
    t.mutable_grad().reset();
  } else {
    const at::Tensor& g = UnwrapTensor(info[1], "grad");
    TORCH_CHECK(g.sizes() == t.sizes(), "assigned grad has shape ", g.sizes(), " but the tensor has shape ", t.sizes());
    TORCH_CHECK(g.scalar_type() == t.scalar_type(), "assigned grad has dtype ", g.scalar_type(),
                " but the tensor has dtype ", t.scalar_type());
    TORCH_CHECK(g.device() == t.device(), "assigned grad is on ", g.device(), " but the tensor is on ", t.device());
    t.mutable_grad() = g;
  }
  return info.Env().Undefined();
}

Napi::Value RequiresGrad(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), UnwrapTensor(info[0], "tensor").requires_grad());
}

Napi::Value IsLeaf(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), UnwrapTensor(info[0], "tensor").is_leaf());
}

Napi::Value GradFnName(const Napi::CallbackInfo& info) {
  const auto& fn = torch::autograd::impl::grad_fn_unsafe(UnwrapTensor(info[0], "tensor"));
  if (!fn) return info.Env().Null();
  return Napi::String::New(info.Env(), fn->name());
}

Napi::Value IsGradEnabled(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), c10::GradMode::is_enabled());
}

Napi::Value SetGradEnabled(const Napi::CallbackInfo& info) {
  c10::GradMode::set_enabled(ToBool(info[0], "enabled"));
  return info.Env().Undefined();
}

// Inference mode is an RAII guard in libtorch; JS enters and exits it in
// strictly nested pairs (try/finally), so a per-thread stack of guards suffices.
thread_local std::vector<std::unique_ptr<c10::InferenceMode>> inferenceGuards;

Napi::Value EnterInferenceMode(const Napi::CallbackInfo& info) {
  inferenceGuards.push_back(std::make_unique<c10::InferenceMode>(ToBool(info[0], "enabled")));
  return info.Env().Undefined();
}

Napi::Value ExitInferenceMode(const Napi::CallbackInfo& info) {
  if (inferenceGuards.empty()) throw NativeError("exitInferenceMode() without a matching enter");
  inferenceGuards.pop_back();
  return info.Env().Undefined();
}

Napi::Value IsInferenceModeEnabled(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), c10::InferenceMode::is_enabled());
}

}  // namespace

void InitAutograd(Napi::Env env, Napi::Object exports) {
  Export<Backward>(env, exports, "backward");
  Export<Grad>(env, exports, "grad");
  Export<RegisterHook>(env, exports, "registerHook");
  Export<RemoveHook>(env, exports, "removeHook");
  Export<SetGrad>(env, exports, "setGrad");
  Export<RequiresGrad>(env, exports, "requiresGrad");
  Export<IsLeaf>(env, exports, "isLeaf");
  Export<GradFnName>(env, exports, "gradFnName");
  Export<IsGradEnabled>(env, exports, "isGradEnabled");
  Export<SetGradEnabled>(env, exports, "setGradEnabled");
  Export<EnterInferenceMode>(env, exports, "enterInferenceMode");
  Export<ExitInferenceMode>(env, exports, "exitInferenceMode");
  Export<IsInferenceModeEnabled>(env, exports, "isInferenceModeEnabled");
}

}  // namespace vggtorch
