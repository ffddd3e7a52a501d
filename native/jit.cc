// The inference engine: torch.jit for JS. jitTrace runs a JS forward under
// libtorch's tracer (every op of the addon goes through the dispatcher's
// callBoxed, which the tracer records), and keeps the graph as the `forward`
// method of a torch::jit::Module, so it can be run (here or on libuv's pool),
// optimized with libtorch's freezing and oneDNN passes, and saved as a
// TorchScript file Python loads. jitLoad reads such a file written by Python.
#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/frontend/tracer.h>
#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/graph_rewrite_helper.h>
#include <torch/csrc/jit/serialization/import.h>
#include <ATen/core/grad_mode.h>

#include <memory>
#include <unordered_set>

#include "tensor.h"

namespace vggtorch {

namespace {

// One engine: a module whose `forward` takes one tensor. Held by JS through an
// External; async runs copy the Module (a reference to the same object), so
// dispose() during a run frees the weights once the run is over.
struct Engine {
  torch::jit::Module module;
  bool disposed = false;
};

const napi_type_tag kEngineTag = {0x7667677467656a69ULL, 0x74456e67696e6531ULL};

Napi::Value WrapEngine(Napi::Env env, torch::jit::Module module) {
  auto ext = Napi::External<Engine>::New(env, new Engine{std::move(module)}, [](Napi::Env, Engine* e) { delete e; });
  ext.TypeTag(&kEngineTag);
  return ext;
}

Engine& UnwrapEngine(const Napi::Value& v, bool live = true) {
  if (!v.IsExternal() || !v.As<Napi::External<Engine>>().CheckTypeTag(&kEngineTag)) {
    throw ArgumentError("expected a jit engine handle, got " + Shown(v));
  }
  Engine& e = *v.As<Napi::External<Engine>>().Data();
  if (live && e.disposed) throw NativeError("this ScriptModule has been disposed");
  return e;
}

std::shared_ptr<torch::jit::Graph> ForwardGraph(const torch::jit::Module& m) {
  auto method = m.find_method("forward");
  if (!method) throw NativeError("the module has no forward method");
  return toGraphFunction(method->function()).graph();
}

// The traced graph holds the weights as constants. They were the model's own
// tensors; detached, they share its storage but never its autograd state.
void DetachConstants(torch::jit::Graph& graph) {
  for (torch::jit::Node* n : graph.nodes()) {
    if (n->kind() == c10::prim::Constant && n->hasAttribute(c10::attr::value) &&
        n->kindOf(c10::attr::value) == torch::jit::AttributeKind::t) {
      n->t_(c10::attr::value, n->t(c10::attr::value).detach());
    }
  }
}

// jitTrace(fn, input): runs fn() (the JS forward, which must use `input` and
// return a Tensor handle) under the tracer; returns the engine.
Napi::Value Trace(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsFunction()) throw ArgumentError("jitTrace(): fn must be a function, got " + Shown(info[0]));
  Napi::Function fn = info[0].As<Napi::Function>();
  at::Tensor input = UnwrapTensor(info[1], "input");
  if (torch::jit::tracer::isTracing()) throw NativeError("jit.trace cannot be nested inside another trace");
  at::NoGradGuard noGrad;
  torch::jit::Module self(c10::QualifiedName("__torch__.vgg_torch.TracedModule"),
                          std::make_shared<torch::jit::CompilationUnit>());
  self.register_attribute("training", c10::BoolType::get(), false);
  auto traced = torch::jit::tracer::trace(
      {input},
      [&](torch::jit::Stack) -> torch::jit::Stack {
        Napi::Value out = fn.Call({});
        if (!out.IsNumber()) throw ArgumentError("jit.trace: forward must return a Tensor, got " + Shown(out));
        return {UnwrapTensor(out, "forward's result")};
      },
      [](const at::Tensor&) { return std::string(); }, /*strict=*/false, /*force_outplace=*/false, &self);
  auto graph = std::get<0>(traced)->graph;
  // The tracer records aten::conv2d as aten::_convolution; the folding and
  // oneDNN passes (and ONNX export) look for aten::conv2d.
  torch::jit::graph_rewrite_helper::replaceConvolutionWithAtenConv(graph);
  torch::jit::EliminateDeadCode(graph);  // the rewrite leaves _convolution's extra flags behind
  DetachConstants(*graph);
  auto fnc = self._ivalue()->compilation_unit()->create_function(
      c10::QualifiedName(*self.type()->name(), "forward"), graph);
  self.type()->addMethod(fnc);
  return WrapEngine(env, std::move(self));
}

Napi::Value ConstantValue(Napi::Env env, const c10::IValue& v) {
  if (v.isTensor()) return WrapTensor(env, v.toTensor());
  if (v.isNone()) return env.Null();
  if (v.isBool()) return Napi::Boolean::New(env, v.toBool());
  if (v.isInt()) return Napi::Number::New(env, static_cast<double>(v.toInt()));
  if (v.isDouble()) return Napi::Number::New(env, v.toDouble());
  if (v.isString()) return Napi::String::New(env, v.toStringRef());
  if (v.isDevice()) return Napi::String::New(env, v.toDevice().str());
  if (v.isIntList() || v.isDoubleList() || v.isBoolList()) {
    auto list = v.toListRef();
    auto arr = Napi::Array::New(env, list.size());
    for (size_t i = 0; i < list.size(); i++) arr.Set(i, ConstantValue(env, list[i]));
    return arr;
  }
  return env.Undefined();  // an object constant (packed weights): its kind says what it is
}

Napi::Array Names(Napi::Env env, c10::ArrayRef<torch::jit::Value*> values, bool skipSelf) {
  auto arr = Napi::Array::New(env);
  uint32_t k = 0;
  for (auto* v : values) {
    if (skipSelf && v->type()->kind() == c10::TypeKind::ClassType) continue;
    arr.Set(k++, v->debugName());
  }
  return arr;
}

// jitGraph(engine): { inputs, outputs, nodes: [{ kind, inputs, outputs, value? }] } of forward.
Napi::Value Graph(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto graph = ForwardGraph(UnwrapEngine(info[0]).module);
  auto out = Napi::Object::New(env);
  out.Set("inputs", Names(env, graph->inputs(), true));
  out.Set("outputs", Names(env, graph->outputs(), false));
  auto nodes = Napi::Array::New(env);
  uint32_t k = 0;
  for (torch::jit::Node* n : graph->nodes()) {
    auto o = Napi::Object::New(env);
    o.Set("kind", n->kind().toQualString());
    o.Set("inputs", Names(env, n->inputs(), false));
    o.Set("outputs", Names(env, n->outputs(), false));
    if (n->kind() == c10::prim::Constant) {
      auto v = torch::jit::toIValue(n->output());
      o.Set("value", v ? ConstantValue(env, *v) : env.Null());
      if (v && v->isTensor()) o.Set("tensor", true);  // a handle, which JS wraps as a Tensor
    }
    nodes.Set(k++, o);
  }
  out.Set("nodes", nodes);
  return out;
}

// jitGraphText(engine): the forward graph as libtorch prints it.
Napi::Value GraphText(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), ForwardGraph(UnwrapEngine(info[0]).module)->toString());
}

at::Tensor RunForward(torch::jit::Module& module, const at::Tensor& x) {
  at::NoGradGuard noGrad;
  c10::IValue out = module.forward({x});
  if (!out.isTensor()) throw NativeError("forward returned " + out.tagKind() + ", not a Tensor");
  return out.toTensor();
}

Napi::Value Forward(const Napi::CallbackInfo& info) {
  Engine& e = UnwrapEngine(info[0]);
  const at::Tensor& x = UnwrapTensor(info[1], "input");
  return WrapTensor(info.Env(), RunForward(e.module, x));
}

// forward on libuv's pool: no JS runs in Execute; the result handle is made
// on the JS thread in OnOK.
class ForwardWorker : public Napi::AsyncWorker {
 public:
  ForwardWorker(Napi::Env env, torch::jit::Module module, at::Tensor x)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), module_(std::move(module)), x_(std::move(x)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {
    try {
      out_ = RunForward(module_, x_);
    } catch (const c10::Error& e) {
      SetError(CleanMessage(e));
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override {
    Release();
    try {
      deferred_.Resolve(WrapTensor(Env(), std::move(out_)));
    } catch (const std::exception& e) {
      deferred_.Reject(Napi::Error::New(Env(), e.what()).Value());
    }
  }
  void OnError(const Napi::Error& e) override {
    Release();
    deferred_.Reject(e.Value());
  }

 private:
  // The last reference to the weights may be ours (disposed meanwhile): drop it on the JS thread.
  void Release() {
    module_ = torch::jit::Module();
    x_ = at::Tensor();
  }
  Napi::Promise::Deferred deferred_;
  torch::jit::Module module_;
  at::Tensor x_;
  at::Tensor out_;
};

Napi::Value ForwardAsync(const Napi::CallbackInfo& info) {
  Engine& e = UnwrapEngine(info[0]);
  const at::Tensor& x = UnwrapTensor(info[1], "input");
  auto* worker = new ForwardWorker(info.Env(), e.module, x);
  auto promise = worker->Promise();
  worker->Queue();
  return promise;
}

// jitOptimize(engine, mode): 'freeze' (weights inlined, BN folded into conv,
// dropout dropped) or 'inference' (freeze, then oneDNN layouts, pre-packed
// weights and fused conv+ReLU, as torch.jit.optimize_for_inference).
Napi::Value Optimize(const Napi::CallbackInfo& info) {
  Engine& e = UnwrapEngine(info[0]);
  std::string mode = ToString(info[1], "mode");
  torch::jit::Module m = e.module.clone();
  m.eval();
  if (mode == "freeze") return WrapEngine(info.Env(), torch::jit::freeze(m));
  if (mode == "inference") return WrapEngine(info.Env(), torch::jit::optimize_for_inference(m));
  throw RangeArgumentError("mode must be 'freeze' or 'inference', got '" + mode + "'");
}

Napi::Value Save(const Napi::CallbackInfo& info) {
  Engine& e = UnwrapEngine(info[0]);
  e.module.save(ToString(info[1], "path"));
  return info.Env().Undefined();
}

Napi::Value Load(const Napi::CallbackInfo& info) {
  std::string path = ToString(info[0], "path");
  torch::jit::Module m = torch::jit::load(path, c10::Device(c10::kCPU));
  if (!m.find_method("forward")) throw NativeError("jit.load: " + path + " has no forward method");
  m.eval();
  return WrapEngine(info.Env(), std::move(m));
}

Napi::Value Dispose(const Napi::CallbackInfo& info) {
  Engine& e = UnwrapEngine(info[0], false);
  e.module = torch::jit::Module();
  e.disposed = true;
  return info.Env().Undefined();
}

Napi::Value IsDisposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), UnwrapEngine(info[0], false).disposed);
}

// jitMemory(engine): { tensors, bytes } of the distinct weights the engine
// holds: module attributes and graph constants of every method.
Napi::Value Memory(const Napi::CallbackInfo& info) {
  Engine& e = UnwrapEngine(info[0]);
  std::unordered_set<const void*> seen;
  int64_t tensors = 0, bytes = 0;
  auto count = [&](const at::Tensor& t) {
    if (!t.defined()) return;
    const void* key = t.has_storage() ? static_cast<const void*>(t.storage().unsafeGetStorageImpl())
                                      : static_cast<const void*>(t.unsafeGetTensorImpl());
    tensors++;
    if (!seen.insert(key).second) return;
    bytes += t.has_storage() ? static_cast<int64_t>(t.storage().nbytes()) : t.numel() * static_cast<int64_t>(t.element_size());
  };
  for (const auto& attr : e.module.named_attributes(/*recurse=*/true)) {
    if (attr.value.isTensor()) count(attr.value.toTensor());
  }
  std::function<void(torch::jit::Block*)> walk = [&](torch::jit::Block* b) {
    for (torch::jit::Node* n : b->nodes()) {
      if (n->kind() == c10::prim::Constant && n->hasAttribute(c10::attr::value) &&
          n->kindOf(c10::attr::value) == torch::jit::AttributeKind::t) {
        count(n->t(c10::attr::value));
      }
      for (auto* sub : n->blocks()) walk(sub);
    }
  };
  for (const auto& m : e.module.modules()) {
    for (const auto& method : m.get_methods()) walk(toGraphFunction(method.function()).graph()->block());
  }
  auto out = Napi::Object::New(info.Env());
  out.Set("tensors", Napi::Number::New(info.Env(), static_cast<double>(tensors)));
  out.Set("bytes", Napi::Number::New(info.Env(), static_cast<double>(bytes)));
  return out;
}

}  // namespace

void RefuseWhileTracing(const char* what) {
  if (!torch::jit::tracer::isTracing()) return;
  throw NativeError(std::string("jit.trace: the forward reads tensor values (") + what +
                    "), so what it computes may depend on the data; a traced graph would replay only "
                    "the example input's path. Keep data-dependent code out of the traced forward");
}

void InitJit(Napi::Env env, Napi::Object exports) {
  Export<Trace>(env, exports, "jitTrace");
  Export<Graph>(env, exports, "jitGraph");
  Export<GraphText>(env, exports, "jitGraphText");
  Export<Forward>(env, exports, "jitForward");
  Export<ForwardAsync>(env, exports, "jitForwardAsync");
  Export<Optimize>(env, exports, "jitOptimize");
  Export<Save>(env, exports, "jitSave");
  Export<Load>(env, exports, "jitLoad");
  Export<Dispose>(env, exports, "jitDispose");
  Export<IsDisposed>(env, exports, "jitIsDisposed");
  Export<Memory>(env, exports, "jitMemory");
}

}  // namespace vggtorch
