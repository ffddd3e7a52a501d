// Tensor handles, their memory accounting, and moving bytes between JS and libtorch.
#include <ATen/TracerMode.h>

#include "tensor.h"

#include <cmath>
#include <cstring>

namespace vggtorch {

namespace {

const void* StorageKey(const at::Tensor& t) {
  if (!t.defined() || !t.has_storage()) return nullptr;
  return t.storage().unsafeGetStorageImpl();
}

int64_t StorageBytes(const at::Tensor& t) {
  if (t.has_storage()) return static_cast<int64_t>(t.storage().nbytes());
  return static_cast<int64_t>(t.numel() * t.element_size());
}

// A handle is a JS number: generation * 2^24 + slot + 1 (exact in a double).
// A number costs V8 nothing to make or drop, unlike an External, which Node
// backs with a global handle.
constexpr double kSlotSpan = 16777216.0;  // 2^24 live tensors per environment
constexpr uint32_t kMaxGeneration = 1u << 28;

double Pack(uint32_t slot, uint32_t generation) {
  return static_cast<double>(generation) * kSlotSpan + static_cast<double>(slot) + 1.0;
}

}  // namespace

Slot* FindSlot(Accounting& acc, double packed) {
  if (!(packed >= 1.0) || packed != std::floor(packed)) return nullptr;
  double generation = std::floor(packed / kSlotSpan);
  uint64_t index = static_cast<uint64_t>(packed - generation * kSlotSpan);
  if (index == 0 || index > acc.slots.size()) return nullptr;
  Slot& slot = acc.slots[index - 1];
  if (!slot.live || slot.generation != static_cast<uint32_t>(generation)) return nullptr;
  return &slot;
}

namespace {

// The live slot a handle names, or nullptr if it was disposed.
Slot* Lookup(Accounting& acc, const Napi::Value& value) {
  return FindSlot(acc, value.As<Napi::Number>().DoubleValue());
}

// Drops the slot's claim on its storage; reports freed bytes to V8.
void Release(Napi::Env env, Accounting& acc, Slot& slot) {
  acc.tensors--;
  auto it = acc.storages.find(slot.storageKey);
  if (it != acc.storages.end() && --it->second.first == 0) {
    acc.bytes -= it->second.second;
    acc.Report(env, -it->second.second);
    acc.storages.erase(it);
  }
  slot.tensor = at::Tensor();
  slot.live = false;
  slot.generation = (slot.generation + 1) % kMaxGeneration;
  acc.freeSlots.push_back(static_cast<uint32_t>(&slot - acc.slots.data()));
}

}  // namespace

void Accounting::Report(Napi::Env env, int64_t delta) {
  unreportedBytes += delta;
  if (unreportedBytes > (1 << 16) || unreportedBytes < -(1 << 16)) {
    Napi::MemoryManagement::AdjustExternalMemory(env, unreportedBytes);
    unreportedBytes = 0;
  }
}

void Accounting::DrainPending() {
  std::vector<std::shared_ptr<v8::BackingStore>*> todo;
  {
    std::lock_guard<std::mutex> lock(pendingMutex);
    todo.swap(pendingRelease);
  }
  for (auto* ref : todo) delete ref;
}

Napi::Value WrapTensor(Napi::Env env, at::Tensor tensor) {
  if (!tensor.defined()) return env.Null();
  Accounting& acc = *State(env).accounting;
  uint32_t index;
  if (!acc.freeSlots.empty()) {
    index = acc.freeSlots.back();
    acc.freeSlots.pop_back();
  } else {
    if (acc.slots.size() + 1 >= static_cast<size_t>(kSlotSpan)) throw NativeError("too many live tensors (16,777,215)");
    index = static_cast<uint32_t>(acc.slots.size());
    acc.slots.emplace_back();
  }
  Slot& slot = acc.slots[index];
  slot.tensor = std::move(tensor);
  slot.storageKey = StorageKey(slot.tensor);
  slot.live = true;
  acc.tensors++;
  auto& entry = acc.storages[slot.storageKey];
  if (entry.first++ == 0) {
    entry.second = StorageBytes(slot.tensor);
    acc.bytes += entry.second;
    acc.Report(env, entry.second);
  }
  return Napi::Number::New(env, Pack(index, slot.generation));
}

std::string Shown(const Napi::Value& v, int depth) {
  if (v.IsNull()) return "null";
  if (v.IsUndefined()) return "undefined";
  if (v.IsBoolean()) return v.As<Napi::Boolean>().Value() ? "true" : "false";
  if (v.IsNumber()) return v.ToString().Utf8Value();  // JS's own text: 1.5, NaN, -Infinity
  if (v.IsBigInt()) return v.ToString().Utf8Value() + "n";
  if (v.IsString()) {
    std::string s = v.As<Napi::String>().Utf8Value();
    if (s.size() > 40) s = s.substr(0, 40) + "...";
    return "'" + s + "' (string)";
  }
  if (v.IsFunction()) return "a function";
  if (v.IsArray()) {
    auto a = v.As<Napi::Array>();
    if (depth > 0 || a.Length() > 8) return "an array of length " + std::to_string(a.Length());
    std::string out = "[";
    for (uint32_t i = 0; i < a.Length(); i++) out += (i ? ", " : "") + Shown(a.Get(i), depth + 1);
    return out + "]";
  }
  if (v.IsObject()) {
    Napi::Value ctor = v.As<Napi::Object>().Get("constructor");
    if (ctor.IsFunction()) {
      Napi::Value name = ctor.As<Napi::Object>().Get("name");
      if (name.IsString() && name.As<Napi::String>().Utf8Value() != "Object")
        return "a " + name.As<Napi::String>().Utf8Value();
    }
    return "an object";
  }
  return "a symbol";
}

const at::Tensor& UnwrapTensor(const Napi::Value& value, const char* what) {
  if (!value.IsNumber())
    throw ArgumentError(std::string("argument '") + what + "' must be a Tensor, got " + Shown(value));
  Slot* slot = Lookup(*State(value.Env()).accounting, value);
  if (!slot) throw ArgumentError(std::string("argument '") + what + "' is a Tensor that has been disposed");
  return slot->tensor;
}

int64_t ToInt(const Napi::Value& v, const char* what) {
  if (v.IsNumber()) {
    double d = v.As<Napi::Number>().DoubleValue();
    if (d == static_cast<double>(static_cast<int64_t>(d)) && d >= -9.3e18 && d <= 9.3e18)
      return static_cast<int64_t>(d);
  } else if (v.IsBigInt()) {
    bool lossless = false;
    int64_t r = v.As<Napi::BigInt>().Int64Value(&lossless);
    if (lossless) return r;
  }
  throw ArgumentError(std::string("argument '") + what + "' must be an integer, got " + Shown(v));
}

double ToDouble(const Napi::Value& v, const char* what) {
  if (v.IsNumber()) return v.As<Napi::Number>().DoubleValue();
  if (v.IsBigInt()) {
    bool lossless = false;
    return static_cast<double>(v.As<Napi::BigInt>().Int64Value(&lossless));
  }
  throw ArgumentError(std::string("argument '") + what + "' must be a number, got " + Shown(v));
}

bool ToBool(const Napi::Value& v, const char* what) {
  if (v.IsBoolean()) return v.As<Napi::Boolean>().Value();
  throw ArgumentError(std::string("argument '") + what + "' must be a boolean, got " + Shown(v));
}

std::string ToString(const Napi::Value& v, const char* what) {
  if (v.IsString()) return v.As<Napi::String>().Utf8Value();
  throw ArgumentError(std::string("argument '") + what + "' must be a string, got " + Shown(v));
}

std::vector<int64_t> ToIntList(const Napi::Value& v, const char* what) {
  if (!v.IsArray())
    throw ArgumentError(std::string("argument '") + what + "' must be an array of integers, got " + Shown(v));
  auto arr = v.As<Napi::Array>();
  std::vector<int64_t> out(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); i++) out[i] = ToInt(arr.Get(i), what);
  return out;
}

namespace {

// The V8 ArrayBuffer behind a Node-API value. Node-API has no way to pin an
// ArrayBuffer's memory, so this reaches V8 the way Node itself converts
// (napi_value is a v8::Local<v8::Value>, bit for bit).
v8::Local<v8::ArrayBuffer> V8ArrayBuffer(const Napi::ArrayBuffer& buffer) {
  napi_value raw = buffer;
  v8::Local<v8::Value> local;
  static_assert(sizeof(raw) == sizeof(local), "napi_value is not a v8::Local");
  std::memcpy(static_cast<void*>(&local), &raw, sizeof(raw));
  return local.As<v8::ArrayBuffer>();
}

// fromBuffer(arrayBuffer, byteOffset, shape, dtype, copy) -> handle.
// Without copy the tensor borrows the JS memory. Holding the ArrayBuffer object
// would not keep that memory valid: a resizable buffer decommits pages when it
// shrinks, and a detached buffer's memory belongs to whoever it went to (who
// may free it). So a borrowing tensor refuses resizable buffers and owns a
// reference to the backing store itself, which keeps the memory alive however
// the ArrayBuffer is detached (napi_detach_arraybuffer, wasm memory growth) or
// collected. The JS side (fromBuffer in lib/tensor/creation.ts) also marks a
// user's buffer untransferable, so that transfers copy and the tensor and the
// buffer keep sharing their bytes.
Napi::Value FromBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  State(env).accounting->DrainPending();
  if (!info[0].IsArrayBuffer())
    throw ArgumentError("argument 'buffer' must be an ArrayBuffer (not a SharedArrayBuffer)");
  auto buffer = info[0].As<Napi::ArrayBuffer>();
  if (buffer.IsDetached()) {
    throw ArgumentError(
        "argument 'buffer' is a detached ArrayBuffer (it was transferred, e.g. by postMessage or "
        "structuredClone, and no longer holds any data)");
  }
  int64_t offset = ToInt(info[1], "byteOffset");
  auto shape = ToIntList(info[2], "shape");
  auto dtype = static_cast<at::ScalarType>(ToInt(info[3], "dtype"));
  bool copy = ToBool(info[4], "copy");
  int64_t numel = 1;
  for (auto s : shape) {
    if (s < 0) throw ArgumentError("shape entries must be non-negative");
    numel *= s;
  }
  int64_t itemsize = static_cast<int64_t>(c10::elementSize(dtype));
  int64_t need = numel * itemsize;
  if (offset < 0 || offset + need > static_cast<int64_t>(buffer.ByteLength())) {
    throw RangeArgumentError("buffer holds " + std::to_string(buffer.ByteLength() - offset) + " bytes, shape needs " +
                             std::to_string(need));
  }
  auto options = at::TensorOptions().dtype(dtype);
  char* data = static_cast<char*>(buffer.Data()) + offset;
  bool aligned = reinterpret_cast<uintptr_t>(data) % itemsize == 0;
  if (copy || !aligned || need == 0) {
    at::Tensor t = at::empty(shape, options);
    if (need) std::memcpy(t.data_ptr(), data, need);
    return WrapTensor(env, std::move(t));
  }
  v8::Local<v8::ArrayBuffer> ab = V8ArrayBuffer(buffer);
  std::shared_ptr<v8::BackingStore> store = ab->GetBackingStore();
  if (store->IsResizableByUserJavaScript()) {
    throw ArgumentError("argument 'buffer' is a resizable ArrayBuffer (maxByteLength " +
                        std::to_string(store->MaxByteLength()) +
                        "): a tensor cannot borrow memory that can shrink under it; pass a fixed-length buffer or "
                        "copy it with tensor()");
  }
  auto* keep = new std::shared_ptr<v8::BackingStore>(std::move(store));
  std::weak_ptr<Accounting> weak = State(env).accounting;
  at::Tensor t = at::from_blob(
      data, shape,
      [keep, weak](void*) {
        auto acc = weak.lock();
        if (!acc) return;  // environment gone: V8 and its allocator may be gone too, so leak
        if (std::this_thread::get_id() == acc->owner) {
          delete keep;
        } else {
          std::lock_guard<std::mutex> lock(acc->pendingMutex);
          acc->pendingRelease.push_back(keep);
        }
      },
      options);
  return WrapTensor(env, std::move(t));
}

// Copies a tensor's elements (CPU, contiguous, half types widened to float32) into `dst`.
at::Tensor HostCopySource(const at::Tensor& t) {
  at::Tensor src = t.detach();
  if (src.scalar_type() == at::kHalf || src.scalar_type() == at::kBFloat16) src = src.to(at::kFloat);
  return src.to(at::kCPU).contiguous();
}

Napi::Value ToArrayBuffer(const Napi::CallbackInfo& info) {
  RefuseWhileTracing("a copy to JS");
  at::Tensor src = HostCopySource(UnwrapTensor(info[0], "tensor"));
  size_t n = src.numel() * src.element_size();
  auto out = Napi::ArrayBuffer::New(info.Env(), n);
  if (n) std::memcpy(out.Data(), src.data_ptr(), n);
  return out;
}

// The copy runs on libuv's pool; the result buffer was allocated on the JS thread.
class CopyOutWorker : public Napi::AsyncWorker {
 public:
  CopyOutWorker(Napi::Env env, at::Tensor t, Napi::ArrayBuffer out)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), tensor_(std::move(t)),
        outRef_(Napi::Persistent(out)), dst_(out.Data()), capacity_(out.ByteLength()) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {
    try {
      at::Tensor src = HostCopySource(tensor_);
      size_t n = src.numel() * src.element_size();
      if (n != capacity_) throw NativeError("tensor changed size while being copied");
      if (n) std::memcpy(dst_, src.data_ptr(), n);
    } catch (const c10::Error& e) {
      SetError(CleanMessage(e));
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override {
    tensor_ = at::Tensor();  // last reference may be ours: drop it on the JS thread
    deferred_.Resolve(outRef_.Value());
  }
  void OnError(const Napi::Error& e) override {
    tensor_ = at::Tensor();
    deferred_.Reject(e.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  at::Tensor tensor_;
  Napi::Reference<Napi::ArrayBuffer> outRef_;
  void* dst_;
  size_t capacity_;
};

Napi::Value ToArrayBufferAsync(const Napi::CallbackInfo& info) {
  RefuseWhileTracing("a copy to JS");
  const at::Tensor& t = UnwrapTensor(info[0], "tensor");
  bool widen = t.scalar_type() == at::kHalf || t.scalar_type() == at::kBFloat16;
  size_t n = t.numel() * (widen ? 4 : t.element_size());
  auto out = Napi::ArrayBuffer::New(info.Env(), n);
  auto* worker = new CopyOutWorker(info.Env(), t.detach(), out);
  auto promise = worker->Promise();
  worker->Queue();
  return promise;
}

Napi::Value Item(const Napi::CallbackInfo& info) {
  const at::Tensor& t = UnwrapTensor(info[0], "tensor");
  if (t.numel() != 1) {
    throw RangeArgumentError("a Tensor with " + std::to_string(t.numel()) +
                             " elements cannot be converted to a scalar");
  }
  RefuseWhileTracing("item()");
  at::Scalar s = t.item();
  if (s.isBoolean()) return Napi::Boolean::New(info.Env(), s.toBool());
  if (s.isIntegral(false)) return Napi::Number::New(info.Env(), static_cast<double>(s.toLong()));
  return Napi::Number::New(info.Env(), s.toDouble());
}

// meta(h) -> [shape, dtype, device, requiresGrad]: one crossing for what the JS object caches.
Napi::Value Meta(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const at::Tensor& t = UnwrapTensor(info[0], "tensor");
  auto sizes = t.sizes();
  auto shape = Napi::Array::New(env, sizes.size());
  for (size_t i = 0; i < sizes.size(); i++) shape.Set(i, Napi::Number::New(env, static_cast<double>(sizes[i])));
  auto out = Napi::Array::New(env, 3);
  out.Set(0u, shape);
  out.Set(1u, Napi::Number::New(env, static_cast<int>(t.scalar_type())));
  out.Set(2u, Napi::String::New(env, t.device().str()));
  return out;
}

Napi::Value Strides(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto strides = UnwrapTensor(info[0], "tensor").strides();
  auto out = Napi::Array::New(env, strides.size());
  for (size_t i = 0; i < strides.size(); i++) out.Set(i, Napi::Number::New(env, static_cast<double>(strides[i])));
  return out;
}

// storageInfo(h) -> [storage offset in elements, storage size in bytes]: what the
// .pth writer needs to keep views of one storage shared.
Napi::Value StorageInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const at::Tensor& t = UnwrapTensor(info[0], "tensor");
  auto out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, static_cast<double>(t.storage_offset())));
  out.Set(1u, Napi::Number::New(env, static_cast<double>(t.has_storage() ? t.storage().nbytes() : 0)));
  return out;
}

Napi::Value IsContiguous(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), UnwrapTensor(info[0], "tensor").is_contiguous());
}

Napi::Value SameStorage(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(),
                            StorageKey(UnwrapTensor(info[0], "a")) == StorageKey(UnwrapTensor(info[1], "b")));
}

// Disposing twice, or a handle whose slot was reused, is a no-op.
Napi::Value Dispose(const Napi::CallbackInfo& info) {
  if (!info[0].IsNumber()) throw ArgumentError("argument 'tensor' must be a Tensor");
  Accounting& acc = *State(info.Env()).accounting;
  if (Slot* slot = Lookup(acc, info[0])) Release(info.Env(), acc, *slot);
  return info.Env().Undefined();
}

Napi::Value IsDisposed(const Napi::CallbackInfo& info) {
  if (!info[0].IsNumber()) throw ArgumentError("argument 'tensor' must be a Tensor");
  return Napi::Boolean::New(info.Env(), Lookup(*State(info.Env()).accounting, info[0]) == nullptr);
}

Napi::Value Memory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto& acc = *State(env).accounting;
  acc.DrainPending();
  auto out = Napi::Object::New(env);
  out.Set("tensors", Napi::Number::New(env, static_cast<double>(acc.tensors)));
  out.Set("bytes", Napi::Number::New(env, static_cast<double>(acc.bytes)));
  return out;
}

}  // namespace

void RefuseWhileTracing(const std::string& what) {
  if (at::tracer::impl::is_dispatch_enabled())
    throw NativeError("jit.trace: the forward reads tensor values (" + what +
                      "); a trace records only tensor operations, "
                      "so control flow or numbers that depend on the data cannot be compiled");
}

void InitTensor(Napi::Env env, Napi::Object exports) {
  Export<FromBuffer>(env, exports, "fromBuffer");
  Export<ToArrayBuffer>(env, exports, "toArrayBuffer");
  Export<ToArrayBufferAsync>(env, exports, "toArrayBufferAsync");
  Export<Item>(env, exports, "item");
  Export<Meta>(env, exports, "meta");
  Export<Strides>(env, exports, "strides");
  Export<IsContiguous>(env, exports, "isContiguous");
  Export<StorageInfo>(env, exports, "storageInfo");
  Export<SameStorage>(env, exports, "sameStorage");
  Export<Dispose>(env, exports, "dispose");
  Export<IsDisposed>(env, exports, "isDisposed");
  Export<Memory>(env, exports, "memory");
}

}  // namespace vggtorch
