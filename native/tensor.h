// Tensor handles: how an at::Tensor is held by JavaScript.
//
// A handle is a napi External around a TensorRef. Each handle owns one
// reference to the TensorImpl (never the storage directly), so disposing a
// handle can never free memory that another handle, a view or the autograd
// graph still uses. Live handles and the storages they keep alive are counted
// per JS environment (worker-thread safe: no process-wide JS state), and the
// bytes of each distinct storage are reported to V8 as external memory once.
#pragma once

#include <ATen/ATen.h>
#include <napi.h>

#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "errors.h"

namespace vggtorch {

// Per-environment bookkeeping; shared_ptr so handles finalized during
// environment teardown never outlive it.
struct Accounting {
  int64_t tensors = 0;
  int64_t bytes = 0;
  // StorageImpl* -> (handles referencing it, bytes reported for it)
  std::unordered_map<const void*, std::pair<int64_t, int64_t>> storages;
  std::thread::id owner = std::this_thread::get_id();
  // JS buffers borrowed by fromBuffer whose tensors died off the JS thread;
  // released at the next native call on the owner thread.
  std::mutex pendingMutex;
  std::vector<Napi::Reference<Napi::Value>*> pendingRelease;
  void DrainPending();
};

struct TensorRef {
  at::Tensor tensor;
  std::shared_ptr<Accounting> accounting;
  const void* storageKey = nullptr;
  bool disposed = false;
};

struct AddonState {
  std::shared_ptr<Accounting> accounting = std::make_shared<Accounting>();
};

AddonState& State(Napi::Env env);

// at::Tensor -> JS handle (null for an undefined tensor).
Napi::Value WrapTensor(Napi::Env env, at::Tensor tensor);
// JS handle -> at::Tensor; TypeError naming `what` if it is not a live handle.
const at::Tensor& UnwrapTensor(const Napi::Value& value, const char* what);
bool IsTensorHandle(const Napi::Value& value);

// Small argument helpers shared by every file.
int64_t ToInt(const Napi::Value& v, const char* what);
double ToDouble(const Napi::Value& v, const char* what);
bool ToBool(const Napi::Value& v, const char* what);
std::string ToString(const Napi::Value& v, const char* what);
std::vector<int64_t> ToIntList(const Napi::Value& v, const char* what);

void InitTensor(Napi::Env env, Napi::Object exports);
void InitOps(Napi::Env env, Napi::Object exports);
void InitAutograd(Napi::Env env, Napi::Object exports);
void InitRuntime(Napi::Env env, Napi::Object exports);
void InitCuda(Napi::Env env, Napi::Object exports);

}  // namespace vggtorch
