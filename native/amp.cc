// Automatic mixed precision: the switches of libtorch's Autocast dispatch keys
// (AutocastCPU, AutocastCUDA), as torch.autocast flips them. Casting itself is
// libtorch's: with a device's autocast on, every op called through the
// dispatcher (ops.cc) passes its autocast kernel, which casts by libtorch's own
// op lists. The state is thread-local in libtorch, like grad mode.
#include "tensor.h"
#include "torch_compat.h"

namespace vggtorch {

namespace {

// The device types torch.autocast takes here: 'cpu' or 'cuda'.
c10::DeviceType DeviceTypeArg(const Napi::Value& v) {
  if (!v.IsString()) throw ArgumentError("autocast: argument 'deviceType' must be a string, got " + Shown(v));
  std::string name = v.As<Napi::String>().Utf8Value();
  if (name == "cpu") return c10::DeviceType::CPU;
  if (name == "cuda") return c10::DeviceType::CUDA;
  throw RangeArgumentError("autocast: argument 'deviceType' must be 'cpu' or 'cuda', got " + Shown(v));
}

// A floating ScalarType code (lib/tensor/dtype.ts): the only types autocast casts to.
at::ScalarType DtypeArg(const Napi::Value& v) {
  int64_t code = ToInt(v, "dtype");
  if (code < 0 || code >= static_cast<int64_t>(at::ScalarType::NumOptions) ||
      !at::isFloatingType(static_cast<at::ScalarType>(code))) {
    throw RangeArgumentError("autocast: argument 'dtype' must be the code of a floating dtype, got " + Shown(v));
  }
  return static_cast<at::ScalarType>(code);
}

// autocastIsEnabled(deviceType)
Napi::Value AutocastIsEnabled(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), compat::IsAutocastEnabled(DeviceTypeArg(info[0])));
}

// autocastSetEnabled(deviceType, enabled)
Napi::Value AutocastSetEnabled(const Napi::CallbackInfo& info) {
  c10::DeviceType device = DeviceTypeArg(info[0]);
  compat::SetAutocastEnabled(device, ToBool(info[1], "enabled"));
  return info.Env().Undefined();
}

// autocastGetDtype(deviceType) -> ScalarType code
Napi::Value AutocastGetDtype(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<int>(compat::GetAutocastDtype(DeviceTypeArg(info[0]))));
}

// autocastSetDtype(deviceType, code)
Napi::Value AutocastSetDtype(const Napi::CallbackInfo& info) {
  c10::DeviceType device = DeviceTypeArg(info[0]);
  compat::SetAutocastDtype(device, DtypeArg(info[1]));
  return info.Env().Undefined();
}

Napi::Value AutocastIsCacheEnabled(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), at::autocast::is_autocast_cache_enabled());
}

Napi::Value AutocastSetCacheEnabled(const Napi::CallbackInfo& info) {
  at::autocast::set_autocast_cache_enabled(ToBool(info[0], "enabled"));
  return info.Env().Undefined();
}

// The nesting count decides when the cast-weight cache is dropped: torch.autocast's
// exit clears it when the count returns to 0, i.e. outside every autocast region.
Napi::Value AutocastIncrementNesting(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), at::autocast::increment_nesting());
}

Napi::Value AutocastDecrementNesting(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), at::autocast::decrement_nesting());
}

Napi::Value AutocastClearCache(const Napi::CallbackInfo& info) {
  at::autocast::clear_cache();
  return info.Env().Undefined();
}

}  // namespace

void InitAmp(Napi::Env env, Napi::Object exports) {
  Export<AutocastIsEnabled>(env, exports, "autocastIsEnabled");
  Export<AutocastSetEnabled>(env, exports, "autocastSetEnabled");
  Export<AutocastGetDtype>(env, exports, "autocastGetDtype");
  Export<AutocastSetDtype>(env, exports, "autocastSetDtype");
  Export<AutocastIsCacheEnabled>(env, exports, "autocastIsCacheEnabled");
  Export<AutocastSetCacheEnabled>(env, exports, "autocastSetCacheEnabled");
  Export<AutocastIncrementNesting>(env, exports, "autocastIncrementNesting");
  Export<AutocastDecrementNesting>(env, exports, "autocastDecrementNesting");
  Export<AutocastClearCache>(env, exports, "autocastClearCache");
}

}  // namespace vggtorch
