// One error style for the whole addon: every libtorch or C++ exception that
// escapes an exported function becomes a JS Error carrying libtorch's message
// without the C++ backtrace; argument mistakes become TypeErrors that name the
// argument. Nothing is allowed to reach std::terminate.
#pragma once

#include <napi.h>
#include <c10/util/Exception.h>

#include <exception>
#include <string>

namespace vggtorch {

// Thrown by argument checks; turned into a JS TypeError.
struct ArgumentError : std::exception {
  explicit ArgumentError(std::string message) : message(std::move(message)) {}
  const char* what() const noexcept override { return message.c_str(); }
  std::string message;
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
  } catch (const ArgumentError& e) {
    throw Napi::TypeError::New(info.Env(), e.message);
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
