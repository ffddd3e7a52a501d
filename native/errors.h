// One error style for the whole addon: native code throws C++ exceptions only,
// and Guarded turns each one into a JS error at the boundary. libtorch's errors
// become Errors carrying its message without the C++ backtrace; an argument of
// the wrong type becomes a TypeError that names the argument (ArgumentError),
// a value out of range a RangeError (RangeArgumentError, like onnxruntime's
// ORT_NAPI_THROW_RANGEERROR_IF), anything else an Error (NativeError). No
// exported function throws a Napi error itself, and nothing reaches std::terminate.
#pragma once

#include <napi.h>
#include <c10/util/Exception.h>

#include <exception>
#include <string>

namespace vggtorch {

// A failure with the JS error class it becomes.
struct JsError : std::exception {
  enum class Kind { Error, TypeError, RangeError };
  JsError(Kind kind, std::string message) : kind(kind), message(std::move(message)) {}
  const char* what() const noexcept override { return message.c_str(); }
  Kind kind;
  std::string message;
};

// An argument of the wrong type: a JS TypeError.
struct ArgumentError : JsError {
  explicit ArgumentError(std::string message) : JsError(Kind::TypeError, std::move(message)) {}
};

// An argument of the right type but out of range (a size, an index, a device): a JS RangeError.
struct RangeArgumentError : JsError {
  explicit RangeArgumentError(std::string message) : JsError(Kind::RangeError, std::move(message)) {}
};

// A failure that is not the caller's argument (a missing feature of this build): a JS Error.
struct NativeError : JsError {
  explicit NativeError(std::string message) : JsError(Kind::Error, std::move(message)) {}
};

// libtorch's messages end with "Exception raised from ..." when built with
// backtraces; users need only the first part.
inline std::string CleanMessage(const c10::Error& e) {
  std::string msg = e.what_without_backtrace();
  auto cut = msg.find("\nException raised from");
  if (cut != std::string::npos) msg.resize(cut);
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  return msg;
}

using Callback = Napi::Value (*)(const Napi::CallbackInfo&);

// Wraps an exported function so that no C++ exception crosses into V8 unconverted.
template <Callback F>
Napi::Value Guarded(const Napi::CallbackInfo& info) {
  try {
    return F(info);
  } catch (const Napi::Error&) {
    throw;
  } catch (const JsError& e) {
    switch (e.kind) {
      case JsError::Kind::TypeError: throw Napi::TypeError::New(info.Env(), e.message);
      case JsError::Kind::RangeError: throw Napi::RangeError::New(info.Env(), e.message);
      case JsError::Kind::Error: break;
    }
    throw Napi::Error::New(info.Env(), e.message);
  } catch (const c10::Error& e) {
    throw Napi::Error::New(info.Env(), CleanMessage(e));
  } catch (const std::bad_alloc&) {
    throw Napi::Error::New(info.Env(), "out of memory");
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), e.what());
  } catch (...) {
    throw Napi::Error::New(info.Env(), "unknown native error");
  }
}

template <Callback F>
void Export(Napi::Env env, Napi::Object exports, const char* name) {
  exports.Set(name, Napi::Function::New(env, Guarded<F>, name));
}

}  // namespace vggtorch
