// TorchScript: libtorch's tracer, graph passes, serialization and execution.
//
// jitTrace runs a JS function under torch::jit::tracer. Every op the addon
// calls goes through the dispatcher (ops.cc), whose Tracer key records it into
// a torch::jit::Graph; tensors that are not inputs (the weights) become
// constants. The graph becomes the `forward` of a torch::jit::Module, so it can
// be frozen, optimized, saved for Python's torch.jit.load, and run on a libuv
// worker thread without any JS (ScriptForward).
#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/frontend/tracer.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/graph_rewrite_helper.h>
#include <torch/csrc/jit/serialization/import.h>
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>
#include <c10/core/InferenceMode.h>

#include <cctype>
#include <sstream>

#include "tensor.h"
#include "torch_compat.h"

// Exported by libtorch_cpu in every version (torch/csrc/jit/codegen/fuser/interface.h,
// which Debian's libtorch-dev does not ship); Python's torch._C._jit_override_can_fuse_on_cpu.
namespace torch::jit {
TORCH_API void overrideCanFuseOnCPU(bool value);
}

namespace vggtorch {

namespace {

using torch::jit::Module;
using torch::jit::Stack;

// A compiled module held by JS. JS holds one shared_ptr through a tagged
// External; a running forwardAsync holds another, so dispose() during a run
// frees the weights when the run ends, not under it.
struct Script {
  Module module;
  explicit Script(Module m) : module(std::move(m)) {}
};
using ScriptPtr = std::shared_ptr<Script>;
struct ScriptBox {
  ScriptPtr script;
};

const napi_type_tag kScriptTag = {0x7667677473637269ULL, 0x70744d6f64756c65ULL};

Napi::Value WrapScript(Napi::Env env, Module m) {
  auto ext = Napi::External<ScriptBox>::New(env, new ScriptBox{std::make_shared<Script>(std::move(m))},
                                            [](Napi::Env, ScriptBox* box) { delete box; });
  ext.TypeTag(&kScriptTag);
  return ext;
}

// The box behind a compiled-module handle; TypeError for any other value.
ScriptBox& BoxOf(const Napi::Value& v) {
  if (!v.IsExternal() || !v.As<Napi::External<ScriptBox>>().CheckTypeTag(&kScriptTag))
    throw ArgumentError("script must be a compiled module handle, got " + Shown(v));
  return *v.As<Napi::External<ScriptBox>>().Data();
}

ScriptPtr UnwrapScript(const Napi::Value& v) {
  ScriptBox& box = BoxOf(v);
  if (!box.script) throw NativeError("the compiled module was disposed");
  return box.script;
}

std::vector<at::Tensor> ToTensors(const Napi::Value& v, const char* what) {
  if (!v.IsArray()) throw ArgumentError(std::string(what) + " must be an array of tensors, got " + Shown(v));
  auto arr = v.As<Napi::Array>();
  std::vector<at::Tensor> out;
  for (uint32_t i = 0; i < arr.Length(); i++) out.push_back(UnwrapTensor(arr.Get(i), what));
  return out;
}

Napi::Value OutputsToJs(Napi::Env env, const c10::IValue& out) {
  if (out.isTensor()) return WrapTensor(env, out.toTensor());
  if (out.isTuple() || out.isTensorList() || out.isList()) {
    std::vector<c10::IValue> elems;
    if (out.isTuple()) {
      for (const auto& e : out.toTupleRef().elements()) elems.push_back(e);
    } else {
      for (const auto& e : out.toListRef()) elems.push_back(e);
    }
    auto arr = Napi::Array::New(env, elems.size());
    for (size_t i = 0; i < elems.size(); i++) {
      if (!elems[i].isTensor())
        throw NativeError("a compiled module returned a " + elems[i].tagKind() +
                          " inside its outputs; only tensors are supported");
      arr.Set(i, WrapTensor(env, elems[i].toTensor()));
    }
    return arr;
  }
  throw NativeError("a compiled module returned a " + out.tagKind() +
                    "; only a tensor or a tuple/list of tensors is supported");
}

// While tracing, the weights' handles name detached aliases (same storage and
// version counter, no grad): the tracer turns tensors that are not inputs into
// constants and refuses ones that require grad. Restored on every exit.
struct DetachedWeights {
  // Handles, not Slot pointers: the slot table grows while the forward runs.
  Accounting& acc;
  std::vector<std::pair<double, at::Tensor>> saved;
  DetachedWeights(Accounting& acc, const Napi::Value& handles) : acc(acc) {
    if (!handles.IsArray()) throw ArgumentError("jitTrace: weights must be an array of tensors, got " + Shown(handles));
    auto arr = handles.As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); i++) {
      Napi::Value h = arr.Get(i);
      Slot* slot = h.IsNumber() ? FindSlot(acc, h.As<Napi::Number>().DoubleValue()) : nullptr;
      if (!slot) throw ArgumentError("jitTrace: weight " + std::to_string(i) + " is not a live tensor");
      saved.emplace_back(h.As<Napi::Number>().DoubleValue(), slot->tensor);
      slot->tensor = slot->tensor.detach();
    }
  }
  ~DetachedWeights() {
    for (auto& [handle, t] : saved) {
      if (Slot* slot = FindSlot(acc, handle)) slot->tensor = std::move(t);
    }
  }
};

// A name the TorchScript module may hold an attribute under: a Python identifier,
// so that the saved code (`self.<name>`) reads back in Python.
bool IsIdentifier(const std::string& name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

// The module a trace records into: its attributes are the custom-class objects
// (quantized packed weights) the forward passes to operators. The tracer reads
// a module's attributes, as torch.jit.trace does a Python module's, so the graph
// refers to each as prim::GetAttr on self; an object that is not an attribute
// cannot be recorded (it is not a tensor that could become a constant).
Module TraceModule(const Napi::Value& objects) {
  auto cu = std::make_shared<torch::jit::CompilationUnit>();
  Module module("__torch__.vgg_torch.TracedModule", cu, /*shouldMangle=*/true);
  if (objects.IsUndefined()) return module;
  if (!objects.IsArray())
    throw ArgumentError("jitTrace: objects must be an array of [name, object] pairs, got " + Shown(objects));
  auto arr = objects.As<Napi::Array>();
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Value pair = arr.Get(i);
    if (!pair.IsArray() || pair.As<Napi::Array>().Length() != 2) {
      throw ArgumentError("jitTrace: object " + std::to_string(i) + " must be a [name, object] pair, got " +
                          Shown(pair));
    }
    std::string name = ToString(pair.As<Napi::Array>().Get(0u), "jitTrace: object name");
    if (!IsIdentifier(name)) throw ArgumentError("jitTrace: object name '" + name + "' is not an identifier");
    if (module.hasattr(name)) throw ArgumentError("jitTrace: two objects are named '" + name + "'");
    c10::IValue* obj = UnwrapObject(pair.As<Napi::Array>().Get(1u));
    if (!obj)
      throw ArgumentError("jitTrace: object '" + name + "' must be an object handle, got " +
                          Shown(pair.As<Napi::Array>().Get(1u)));
    if (!obj->isObject()) throw ArgumentError("jitTrace: object '" + name + "' was disposed");
    module.register_attribute(name, obj->type(), *obj);
  }
  return module;
}

// jitTrace(fn, inputs: Handle[], weights: Handle[], objects?: [name, ObjectHandle][]) -> script.
// fn(inputHandles) returns a handle or an array of handles; weights are the
// tensors it reads that become constants (a module's parameters and buffers);
// objects are the custom-class objects it reads, which become attributes.
Napi::Value JitTrace(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsFunction()) throw ArgumentError("jitTrace: fn must be a function");
  auto fn = info[0].As<Napi::Function>();
  Stack inputs;
  for (auto& t : ToTensors(info[1], "jitTrace: inputs")) inputs.emplace_back(t.detach());
  Module module = TraceModule(info[3]);
  // A trace for inference: no autograd graph.
  at::NoGradGuard noGrad;
  DetachedWeights weights(*State(env).accounting, info[2]);
  bool tupleOut = false;
  auto traced = [&](Stack in) -> Stack {
    auto args = Napi::Array::New(env, in.size());
    for (size_t i = 0; i < in.size(); i++) args.Set(i, WrapTensor(env, in[i].toTensor()));
    Napi::Value result = fn.Call({args});  // a JS exception propagates as Napi::Error; trace() abandons
    Stack out;
    if (result.IsArray()) {
      tupleOut = true;
      auto arr = result.As<Napi::Array>();
      for (uint32_t i = 0; i < arr.Length(); i++)
        out.emplace_back(UnwrapTensor(arr.Get(i), "jitTrace: the forward's output"));
    } else {
      out.emplace_back(UnwrapTensor(result, "jitTrace: the forward's output"));
    }
    return out;
  };
  // With `self`, the graph's first input is the module (`forward(self, ...)`,
  // as torch.jit.trace's are) and its attributes are read through it.
  auto traceResult = torch::jit::tracer::trace(
      std::move(inputs), traced, [](const at::Tensor&) { return std::string(); },
      /*strict=*/false, /*force_outplace=*/false, &module);
  std::shared_ptr<torch::jit::Graph> graph = traceResult.first->graph;
  // The tracer records conv2d as aten::_convolution; the folding and oneDNN
  // passes match aten::conv2d.
  torch::jit::graph_rewrite_helper::replaceConvolutionWithAtenConv(graph);
  torch::jit::EliminateDeadCode(graph);
  if (!tupleOut && graph->outputs().size() != 1) throw NativeError("jitTrace: expected one output");

  auto method = module._ivalue()->compilation_unit()->create_function(
      c10::QualifiedName(*module.type()->name(), "forward"), graph);
  module.type()->addMethod(method);
  module.eval();
  return WrapScript(env, std::move(module));
}

// jitLoad(path) -> script: a TorchScript file (torch.jit.save), on the CPU.
Napi::Value JitLoad(const Napi::CallbackInfo& info) {
  std::string path = ToString(info[0], "path");
  Module m = torch::jit::load(path, c10::Device(c10::kCPU));
  m.eval();
  if (!m.find_method("forward")) throw NativeError("jit.load: " + path + " has no forward method");
  return WrapScript(info.Env(), std::move(m));
}

// jitSave(script, path)
Napi::Value JitSave(const Napi::CallbackInfo& info) {
  auto s = UnwrapScript(info[0]);
  s->module.save(ToString(info[1], "path"));
  return info.Env().Undefined();
}

// jitFreeze(script, optimize: boolean) -> script: torch.jit.freeze, then
// (optimize) torch.jit.optimize_for_inference: constant weights, BatchNorm folded
// into convolutions, dropout removed, oneDNN layouts with pre-packed weights,
// conv+ReLU fused.
Napi::Value JitFreeze(const Napi::CallbackInfo& info) {
  auto s = UnwrapScript(info[0]);
  bool optimize = ToBool(info[1], "optimize");
  // Custom-class attributes (quantized packed weights) are shared, not copied:
  // a deep copy would unpack and re-pack them for whatever quantized engine is
  // current, which need not be the one they were packed for (nor give the same
  // bits), and would hold the int8 weights twice. Nothing mutates them.
  bool packed = false;
  for (const auto& a : s->module.named_attributes(/*recurse=*/true)) packed = packed || a.value.isCustomClass();
  Module copy = s->module.clone(/*inplace=*/packed);
  copy.eval();
  Module frozen = torch::jit::freeze(copy, c10::nullopt, /*optimize_numerics=*/true);
  if (optimize) frozen = torch::jit::optimize_for_inference(frozen);
  // The passes leave the constants they replaced (weights before transposing
  // or packing) in the graph: without this the module would hold them twice.
  for (const auto& m : frozen.get_methods()) {
    if (auto* fn = dynamic_cast<torch::jit::GraphFunction*>(&m.function())) {
      auto g = fn->graph();
      torch::jit::EliminateDeadCode(g);
    }
  }
  return WrapScript(info.Env(), std::move(frozen));
}

c10::IValue RunForward(const ScriptPtr& s, std::vector<at::Tensor> inputs) {
  c10::InferenceMode guard;
  std::vector<c10::IValue> args(inputs.begin(), inputs.end());
  return s->module.forward(std::move(args));
}

// jitForward(script, inputs: Handle[]) -> handle | handle[]
Napi::Value JitForward(const Napi::CallbackInfo& info) {
  auto s = UnwrapScript(info[0]);
  return OutputsToJs(info.Env(), RunForward(s, ToTensors(info[1], "inputs")));
}

// A thread's autocast switches (libtorch keeps them thread-local). forwardAsync
// runs under the caller's, so that it gives what forward gives in the same
// autocast region; the worker's own are put back after the run (libuv reuses it).
struct AutocastState {
  bool cpu = false, cuda = false, cache = true;
  at::ScalarType cpuDtype = at::kBFloat16, cudaDtype = at::kHalf;
  static AutocastState Current() {
    AutocastState s;
    s.cpu = compat::IsAutocastEnabled(c10::DeviceType::CPU);
    s.cuda = compat::IsAutocastEnabled(c10::DeviceType::CUDA);
    s.cpuDtype = compat::GetAutocastDtype(c10::DeviceType::CPU);
    s.cudaDtype = compat::GetAutocastDtype(c10::DeviceType::CUDA);
    s.cache = at::autocast::is_autocast_cache_enabled();
    return s;
  }
  void Apply() const {
    compat::SetAutocastEnabled(c10::DeviceType::CPU, cpu);
    compat::SetAutocastEnabled(c10::DeviceType::CUDA, cuda);
    compat::SetAutocastDtype(c10::DeviceType::CPU, cpuDtype);
    compat::SetAutocastDtype(c10::DeviceType::CUDA, cudaDtype);
    at::autocast::set_autocast_cache_enabled(cache);
  }
};

struct AutocastScope {
  AutocastState saved = AutocastState::Current();
  explicit AutocastScope(AutocastState s) {
    // No cast-weight cache on the worker: only the JS thread's outermost region
    // exit clears libtorch's (thread-local) cache, so entries made here would
    // never be freed. The cache saves work, never changes a value.
    s.cache = false;
    s.Apply();
  }
  ~AutocastScope() { saved.Apply(); }
};

// The forward on a libuv worker thread: no JS runs until OnOK/OnError.
class ForwardWorker : public Napi::AsyncWorker {
 public:
  ForwardWorker(Napi::Env env, ScriptPtr s, std::vector<at::Tensor> inputs)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), script_(std::move(s)),
        inputs_(std::move(inputs)), threads_(at::get_num_threads()), autocast_(AutocastState::Current()) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {
    try {
      // The thread setting is per thread under OpenMP: the run uses the caller's (setNumThreads).
      if (at::get_num_threads() != threads_) at::set_num_threads(threads_);
      AutocastScope autocast(autocast_);
      output_ = RunForward(script_, inputs_);
    } catch (const c10::Error& e) {
      SetError(CleanMessage(e));
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    Release();
    try {
      deferred_.Resolve(OutputsToJs(env, output_));
    } catch (const std::exception& e) {
      deferred_.Reject(Napi::Error::New(env, e.what()).Value());
    }
    output_ = c10::IValue();
  }
  void OnError(const Napi::Error& e) override {
    Release();
    deferred_.Reject(e.Value());
  }

 private:
  // The last references may be ours: drop them on the JS thread.
  void Release() {
    inputs_.clear();
    script_.reset();
  }
  Napi::Promise::Deferred deferred_;
  ScriptPtr script_;
  std::vector<at::Tensor> inputs_;
  c10::IValue output_;
  int threads_;
  AutocastState autocast_;
};

// jitForwardAsync(script, inputs: Handle[]) -> Promise<handle | handle[]>
Napi::Value JitForwardAsync(const Napi::CallbackInfo& info) {
  auto s = UnwrapScript(info[0]);
  std::vector<at::Tensor> inputs;
  // Detached: the worker thread must not touch autograd state shared with JS.
  for (auto& t : ToTensors(info[1], "inputs")) inputs.push_back(t.detach());
  auto* worker = new ForwardWorker(info.Env(), std::move(s), std::move(inputs));
  auto promise = worker->Promise();
  worker->Queue();
  return promise;
}

// jitDispose(script): frees the module (its weights) now; a running forwardAsync keeps it until it ends.
Napi::Value JitDispose(const Napi::CallbackInfo& info) {
  BoxOf(info[0]).script.reset();
  return info.Env().Undefined();
}

Napi::Value JitIsDisposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !BoxOf(info[0]).script);
}

// The bytes of the tensors a module holds: its parameters and buffers, and the
// tensor constants of its graphs (a traced or frozen module keeps its weights
// there), each storage once. Pre-packed oneDNN weights are opaque objects and
// are not counted.
Napi::Value JitMemory(const Napi::CallbackInfo& info) {
  auto s = UnwrapScript(info[0]);
  ska::flat_hash_map<const void*, int64_t> storages;
  auto add = [&](const at::Tensor& t) {
    if (t.defined() && t.has_storage())
      storages[t.storage().unsafeGetStorageImpl()] = static_cast<int64_t>(t.storage().nbytes());
  };
  for (const auto& p : s->module.named_parameters(true)) add(p.value);
  for (const auto& b : s->module.named_buffers(true)) add(b.value);
  for (const auto& m : s->module.get_methods()) {
    auto* fn = dynamic_cast<torch::jit::GraphFunction*>(&m.function());
    if (!fn) continue;
    for (auto* node : fn->graph()->nodes()) {
      if (node->kind() != c10::prim::Constant) continue;
      auto v = torch::jit::toIValue(node->output());
      if (v && v->isTensor()) add(v->toTensor());
    }
  }
  int64_t bytes = 0;
  for (const auto& kv : storages) bytes += kv.second;
  auto out = Napi::Object::New(info.Env());
  out.Set("tensors", Napi::Number::New(info.Env(), static_cast<double>(storages.size())));
  out.Set("bytes", Napi::Number::New(info.Env(), static_cast<double>(bytes)));
  return out;
}

std::string ValueName(const torch::jit::Value* v) { return v->debugName(); }

Napi::Value ConstantToJs(Napi::Env env, const torch::jit::Node* node) {
  auto v = torch::jit::toIValue(node->output());
  if (!v || v->isNone()) return env.Null();
  if (v->isTensor()) {
    // Boxed, so that a tensor handle cannot pass for a number constant.
    auto boxed = Napi::Object::New(env);
    boxed.Set("tensor", WrapTensor(env, v->toTensor()));
    return boxed;
  }
  if (v->isInt()) return Napi::Number::New(env, static_cast<double>(v->toInt()));
  if (v->isDouble()) return Napi::Number::New(env, v->toDouble());
  if (v->isBool()) return Napi::Boolean::New(env, v->toBool());
  if (v->isString()) return Napi::String::New(env, v->toStringRef());
  if (v->isDevice()) return Napi::String::New(env, v->toDevice().str());
  if (v->isIntList() || v->isDoubleList() || v->isBoolList()) {
    auto list = v->toListRef();
    auto arr = Napi::Array::New(env, list.size());
    for (size_t i = 0; i < list.size(); i++) {
      const auto& e = list[i];
      arr.Set(i, e.isInt()      ? Napi::Number::New(env, static_cast<double>(e.toInt()))
                 : e.isDouble() ? Napi::Number::New(env, e.toDouble())
                                : Napi::Value(Napi::Boolean::New(env, e.toBool())));
    }
    return arr;
  }
  std::ostringstream text;
  text << *v;
  return Napi::String::New(env, text.str());
}

// jitGraph(script) -> { inputs, outputs, nodes: [{ kind, inputs, outputs, value? }], text }:
// the forward graph in plain JS (self dropped); constants carry their values
// (weights as { tensor: handle }, new handles the caller owns).
Napi::Value JitGraph(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto s = UnwrapScript(info[0]);
  auto& fn = s->module.get_method("forward").function();
  auto* gf = dynamic_cast<torch::jit::GraphFunction*>(&fn);
  if (!gf) throw NativeError("jit graph: forward is not a graph function");
  auto graph = gf->graph();
  auto names = [&](at::ArrayRef<torch::jit::Value*> values, size_t skip) {
    auto arr = Napi::Array::New(env);
    uint32_t k = 0;
    for (size_t i = skip; i < values.size(); i++) arr.Set(k++, Napi::String::New(env, ValueName(values[i])));
    return arr;
  };
  bool hasSelf = !graph->inputs().empty() && graph->inputs()[0]->type()->kind() == c10::TypeKind::ClassType;
  auto out = Napi::Object::New(env);
  out.Set("inputs", names(graph->inputs(), hasSelf ? 1 : 0));
  out.Set("outputs", names(graph->outputs(), 0));
  auto nodes = Napi::Array::New(env);
  uint32_t k = 0;
  for (auto* node : graph->nodes()) {
    auto n = Napi::Object::New(env);
    n.Set("kind", Napi::String::New(env, node->kind().toQualString()));
    n.Set("inputs", names(node->inputs(), 0));
    n.Set("outputs", names(node->outputs(), 0));
    if (node->kind() == c10::prim::Constant) n.Set("value", ConstantToJs(env, node));
    nodes.Set(k++, n);
  }
  out.Set("nodes", nodes);
  std::ostringstream text;
  text << *graph;
  out.Set("text", Napi::String::New(env, text.str()));
  return out;
}

// jitVersion(tensors) -> the sum of their version counters: it changes when
// any of them is modified in place (an optimizer step), so a cached compiled
// module knows its folded weights are stale.
Napi::Value JitVersion(const Napi::CallbackInfo& info) {
  double sum = 0;
  for (const auto& t : ToTensors(info[0], "tensors")) sum += static_cast<double>(t._version());
  return Napi::Number::New(info.Env(), sum);
}

}  // namespace

void InitJit(Napi::Env env, Napi::Object exports) {
  // No CPU fusion in TorchScript's executor. Where a libtorch has NNC with LLVM
  // (Debian's 2.6), a profiled graph run on one thread is compiled into fused
  // kernels that round differently from eager ops, so the compiled path would no
  // longer give eager's bits, and Debian 2.6's LLVM code generation was seen
  // spinning for minutes on a small conv/BN/ReLU graph. 1.13 and pip builds
  // without LLVM do not fuse on the CPU either.
  torch::jit::overrideCanFuseOnCPU(false);
  Export<JitTrace>(env, exports, "jitTrace");
  Export<JitLoad>(env, exports, "jitLoad");
  Export<JitSave>(env, exports, "jitSave");
  Export<JitFreeze>(env, exports, "jitFreeze");
  Export<JitForward>(env, exports, "jitForward");
  Export<JitForwardAsync>(env, exports, "jitForwardAsync");
  Export<JitDispose>(env, exports, "jitDispose");
  Export<JitIsDisposed>(env, exports, "jitIsDisposed");
  Export<JitMemory>(env, exports, "jitMemory");
  Export<JitGraph>(env, exports, "jitGraph");
  Export<JitVersion>(env, exports, "jitVersion");
}

}  // namespace vggtorch
