// Python's float `**` and math.cos, bit for bit: CPython calls the C library's
// pow() and cos(), while V8's Math.pow and Math.cos are fdlibm ports that differ
// in the last bit for a few percent of inputs (enough to break torch.optim's
// bitwise parity: Adam's bias corrections, cosine schedules). This file links
// the same libm as CPython and libtorch.
#include <cmath>

#include "errors.h"

namespace vggtorch {

namespace {

// Only napi and errors.h here: this file needs no ATen header.
double NumberArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsNumber())
    throw ArgumentError(std::string("argument '") + what + "' must be a number");
  return info[i].As<Napi::Number>().DoubleValue();
}

Napi::Value LibmPow(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), std::pow(NumberArg(info, 0, "base"), NumberArg(info, 1, "exponent")));
}

Napi::Value LibmCos(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), std::cos(NumberArg(info, 0, "x")));
}

}  // namespace

void InitPyMath(Napi::Env env, Napi::Object exports) {
  Export<LibmPow>(env, exports, "libmPow");
  Export<LibmCos>(env, exports, "libmCos");
}

}  // namespace vggtorch
