// Tensor handles: how an at::Tensor is held by JavaScript.
//
// A handle is a JS number naming a (slot, generation) pair in this
// environment's slot table. No napi finalizer is involved, so freeing never
// waits for V8 (Node defers napi finalizers to the event loop, which a tight
// training loop never reaches). Each live slot owns
// one reference to the TensorImpl, never the storage directly, so disposing a
// handle can never free memory that another handle, a view or the autograd
// graph still uses. A stale handle (disposed, slot reused) fails the generation
// check. JS frees slots with dispose()/tidy(), or through a FinalizationRegistry
// when a Tensor object is collected. Live handles and the distinct storages
// they keep alive are counted per environment (worker-thread safe), and each
// storage's bytes are reported to V8 as external memory once.
#pragma once

#include <ATen/ATen.h>
#include <napi.h>
#include <v8.h>

#include <memory>
#include <mutex>
#include <thread>
#include <c10/util/flat_hash_map.h>
#include <vector>

#include "errors.h"

namespace vggtorch {

struct Slot {
  at::Tensor tensor;
  const void* storageKey = nullptr;
  uint32_t generation = 0;
  bool live = false;
};

// Per-environment bookkeeping. Shared with from_blob deleters (weak), which may
// run on another thread or after the environment is gone.
struct Accounting {
  int64_t tensors = 0;
  int64_t bytes = 0;
  // StorageImpl* -> (handles referencing it, bytes reported for it)
  ska::flat_hash_map<const void*, std::pair<int64_t, int64_t>> storages;
  // Bytes not yet reported to V8: batched, since V8 needs pressure, not precision.
  int64_t unreportedBytes = 0;
  void Report(Napi::Env env, int64_t delta);
  std::vector<Slot> slots;
  std::vector<uint32_t> freeSlots;
  std::thread::id owner = std::this_thread::get_id();
  // Backing stores borrowed by fromBuffer whose tensors died off the JS thread;
  // released at the next native call on the owner thread, since freeing one
  // may call into V8's allocator.
  std::mutex pendingMutex;
  std::vector<std::shared_ptr<v8::BackingStore>*> pendingRelease;
  void DrainPending();
};

struct AddonState {
  std::shared_ptr<Accounting> accounting = std::make_shared<Accounting>();
};

AddonState& State(Napi::Env env);

// The live slot a handle's number names, or nullptr (disposed or never valid).
Slot* FindSlot(Accounting& acc, double handle);

// at::Tensor -> JS handle (null for an undefined tensor).
Napi::Value WrapTensor(Napi::Env env, at::Tensor tensor);
// JS handle -> at::Tensor; TypeError naming `what` if it is not a live handle.
// A JS value as error messages show it: 1.5, NaN, 'a' (string), null, [1, 2], a Map.
std::string Shown(const Napi::Value& v, int depth = 0);
const at::Tensor& UnwrapTensor(const Napi::Value& value, const char* what);

// Small argument helpers shared by every file.
int64_t ToInt(const Napi::Value& v, const char* what);
double ToDouble(const Napi::Value& v, const char* what);
bool ToBool(const Napi::Value& v, const char* what);
std::string ToString(const Napi::Value& v, const char* what);
std::vector<int64_t> ToIntList(const Napi::Value& v, const char* what);
// A custom-class object handle (quantized packed weights, ops.cc) -> the IValue
// it owns (None once disposed); nullptr for any other value.
c10::IValue* UnwrapObject(const Napi::Value& v);
// A generator handle from newGenerator() -> its generator; nullptr for any other value.
const at::Generator* UnwrapGenerator(const Napi::Value& v);

// While jit.trace records (libtorch's Tracer dispatch key is on), a forward
// must not hand tensor values to JS: the trace cannot follow control flow that
// depends on them, so it would silently replay one branch. Throws then.
void RefuseWhileTracing(const std::string& what);

void InitTensor(Napi::Env env, Napi::Object exports);
void InitOps(Napi::Env env, Napi::Object exports);
void InitAutograd(Napi::Env env, Napi::Object exports);
void InitRuntime(Napi::Env env, Napi::Object exports);
void InitCuda(Napi::Env env, Napi::Object exports);
void InitPyMath(Napi::Env env, Napi::Object exports);
void InitJit(Napi::Env env, Napi::Object exports);
void InitDistributed(Napi::Env env, Napi::Object exports);
void InitAmp(Napi::Env env, Napi::Object exports);

}  // namespace vggtorch
