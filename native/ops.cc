// Every tensor operation goes through libtorch's dispatcher by schema: the JS
// side names an operator ("aten::conv2d") once, gets a handle, and calls it with
// JS values that are converted by the schema's argument types. This gives all of
// libtorch's arguments and defaults, autograd and CUDA kernels with one small
// piece of glue, the way TorchScript's interpreter calls operators.
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/function_schema.h>
#include <ATen/ScalarOps.h>

#include <mutex>
#include <sstream>
#include <unordered_map>

#include "tensor.h"

namespace vggtorch {

// A custom-class object (such as quantized packed weights) held by JS: an
// External owning a copy of the IValue, tagged so no other External passes for one.
const napi_type_tag kObjectTag = {0x7667677463757374ULL, 0x6f6d436c61737321ULL};

static Napi::Value WrapObject(Napi::Env env, const c10::IValue& v) {
  auto ext = Napi::External<c10::IValue>::New(env, new c10::IValue(v), [](Napi::Env, c10::IValue* p) { delete p; });
  ext.TypeTag(&kObjectTag);
  return ext;
}

c10::IValue* UnwrapObject(const Napi::Value& v) {
  if (!v.IsExternal()) return nullptr;
  auto ext = v.As<Napi::External<c10::IValue>>();
  return ext.CheckTypeTag(&kObjectTag) ? ext.Data() : nullptr;
}

namespace {

enum class Kind {
  Tensor,
  TensorList,
  OptTensorList,
  Int,
  IntList,
  Float,
  FloatList,
  Bool,
  BoolList,
  Scalar,
  String,
  Device,
  Generator,
  Object,
  Unsupported
};

struct ArgSpec {
  std::string name;
  Kind kind;
  bool optional;
  int64_t fixedLength;  // int[2]: a single number is repeated
  c10::optional<c10::IValue> defaultValue;
  std::string className;  // Kind::Object: the custom class it must be
};

struct OpEntry {
  c10::OperatorHandle handle;
  std::string display;
  std::vector<ArgSpec> args;
  // For each return: index of the argument it writes in place, or -1.
  std::vector<int> returnsArg;
};

Kind KindOf(const c10::TypePtr& type) {
  switch (type->kind()) {
    case c10::TypeKind::TensorType: return Kind::Tensor;
    case c10::TypeKind::IntType:
    case c10::TypeKind::SymIntType: return Kind::Int;
    case c10::TypeKind::FloatType: return Kind::Float;
    case c10::TypeKind::BoolType: return Kind::Bool;
    case c10::TypeKind::NumberType: return Kind::Scalar;
    case c10::TypeKind::StringType: return Kind::String;
    case c10::TypeKind::DeviceObjType: return Kind::Device;
    case c10::TypeKind::GeneratorType: return Kind::Generator;
    // A custom class (quantized packed weights): carried as an opaque handle.
    case c10::TypeKind::ClassType: return Kind::Object;
    case c10::TypeKind::ListType: {
      auto elem = type->containedType(0);
      switch (elem->kind()) {
        case c10::TypeKind::TensorType: return Kind::TensorList;
        case c10::TypeKind::IntType:
        case c10::TypeKind::SymIntType: return Kind::IntList;
        case c10::TypeKind::FloatType: return Kind::FloatList;
        case c10::TypeKind::BoolType: return Kind::BoolList;
        case c10::TypeKind::OptionalType:
          if (elem->containedType(0)->kind() == c10::TypeKind::TensorType) return Kind::OptTensorList;
          return Kind::Unsupported;
        default: return Kind::Unsupported;
      }
    }
    default: return Kind::Unsupported;
  }
}

std::mutex registryMutex;
// Process-wide and never freed: operator handles are immutable and valid for
// the life of the process, so any worker thread may share them.
std::unordered_map<std::string, OpEntry*> registry;

OpEntry* Lookup(const std::string& name, const std::string& overload) {
  std::string key = name + "." + overload;
  std::lock_guard<std::mutex> lock(registryMutex);
  auto it = registry.find(key);
  if (it != registry.end()) return it->second;
  auto handle = c10::Dispatcher::singleton().findSchema({name, overload});
  if (!handle) throw NativeError("libtorch has no operator " + (overload.empty() ? name : key));
  const auto& schema = handle->schema();
  auto* entry = new OpEntry{*handle, name.substr(name.find("::") + 2), {}, {}};
  for (const auto& arg : schema.arguments()) {
    const auto& type = arg.type();
    bool optional = type->kind() == c10::TypeKind::OptionalType;
    Kind kind = KindOf(optional ? type->containedType(0) : type);
    if (kind == Kind::Unsupported && !arg.default_value() && !optional) {
      throw NativeError("operator " + key + " has an argument type the addon cannot pass: " + arg.name());
    }
    int64_t n = arg.N() ? *arg.N() : 0;
    entry->args.push_back({arg.name(), kind, optional, n, arg.default_value(),
                           kind == Kind::Object ? (optional ? type->containedType(0) : type)->str() : std::string()});
  }
  for (const auto& ret : schema.returns()) {
    int index = -1;
    if (ret.alias_info() && ret.alias_info()->isWrite()) {
      for (size_t i = 0; i < schema.arguments().size(); i++) {
        const auto& a = schema.arguments()[i].alias_info();
        if (a && a->isWrite() && a->beforeSets() == ret.alias_info()->beforeSets()) {
          index = static_cast<int>(i);
          break;
        }
      }
    }
    entry->returnsArg.push_back(index);
  }
  registry.emplace(key, entry);
  return entry;
}

// JS has one number type: integral values become integer Scalars, as a Python
// int literal would; others are doubles.
at::Scalar ToScalar(const Napi::Value& v) {
  if (v.IsBoolean()) return at::Scalar(v.As<Napi::Boolean>().Value());
  if (v.IsBigInt()) return at::Scalar(ToInt(v, "scalar"));
  double d = v.As<Napi::Number>().DoubleValue();
  if (std::isfinite(d) && d == std::trunc(d) && std::fabs(d) < 9.0e15) return at::Scalar(static_cast<int64_t>(d));
  return at::Scalar(d);
}

[[noreturn]] void BadArg(const OpEntry& op, const ArgSpec& spec, const char* expected, const Napi::Value& got) {
  throw ArgumentError(op.display + "(): argument '" + spec.name + "' must be " + expected + ", got " + Shown(got));
}

// UnwrapTensor with the operator's name in the message.
const at::Tensor& OpTensor(const OpEntry& op, const ArgSpec& spec, const Napi::Value& v) {
  try {
    return UnwrapTensor(v, spec.name.c_str());
  } catch (const ArgumentError& e) {
    throw ArgumentError(op.display + "(): " + e.message);
  }
}

c10::IValue ToIValue(const OpEntry& op, const ArgSpec& spec, const Napi::Value& v, napi_valuetype type) {
  const char* name = spec.name.c_str();
  switch (spec.kind) {
    case Kind::Object: {
      c10::IValue* obj = UnwrapObject(v);
      if (!obj) BadArg(op, spec, ("a " + spec.className + " handle").c_str(), v);
      if (obj->isNone()) throw ArgumentError(op.display + "(): argument '" + spec.name + "' was disposed");
      if (obj->type()->str() != spec.className) {
        throw ArgumentError(op.display + "(): argument '" + spec.name + "' must be a " + spec.className + ", got a " +
                            obj->type()->str());
      }
      return *obj;
    }
    case Kind::Tensor:
      if (type == napi_number) return OpTensor(op, spec, v);
      // A scalar where a Tensor is expected (passed as [x], or a boolean)
      // becomes a wrapped-number tensor, as in Python's argument parser
      // (`x * 2` is mul.Tensor with a wrapped 2): same type promotion, same
      // autograd node.
      if (type == napi_boolean || (v.IsArray() && v.As<Napi::Array>().Length() == 1)) {
        Napi::Value s = type == napi_boolean ? v : v.As<Napi::Array>().Get(0u);
        if (!s.IsNumber() && !s.IsBoolean() && !s.IsBigInt()) BadArg(op, spec, "a Tensor or a number", v);
        at::Tensor t = c10::scalar_to_tensor(ToScalar(s));
        t.unsafeGetTensorImpl()->set_wrapped_number(true);
        return t;
      }
      BadArg(op, spec, "a Tensor or a number", v);
    case Kind::TensorList:
    case Kind::OptTensorList: {
      if (!v.IsArray()) BadArg(op, spec, "an array of Tensors", v);
      auto arr = v.As<Napi::Array>();
      if (spec.kind == Kind::TensorList) {
        std::vector<at::Tensor> list;
        list.reserve(arr.Length());
        for (uint32_t i = 0; i < arr.Length(); i++) {
          Napi::Value e = arr.Get(i);
          if (!e.IsNumber()) BadArg(op, spec, "an array of Tensors", v);
          list.push_back(OpTensor(op, spec, e));
        }
        return list;
      }
      c10::List<c10::optional<at::Tensor>> list;
      for (uint32_t i = 0; i < arr.Length(); i++) {
        Napi::Value e = arr.Get(i);
        if (e.IsNull() || e.IsUndefined()) {
          list.push_back(c10::nullopt);
        } else {
          if (!e.IsNumber()) BadArg(op, spec, "an array of Tensors or nulls", v);
          list.push_back(OpTensor(op, spec, e));
        }
      }
      return list;
    }
    case Kind::Int:
      if (!v.IsNumber() && !v.IsBigInt()) BadArg(op, spec, "an integer", v);
      try {
        return ToInt(v, name);
      } catch (const ArgumentError&) {
        BadArg(op, spec, "an integer", v);
      }
    case Kind::IntList: {
      std::vector<int64_t> list;
      if (v.IsNumber() || v.IsBigInt()) {
        list.assign(spec.fixedLength > 0 ? spec.fixedLength : 1, ToInt(v, name));
      } else if (v.IsArray()) {
        auto arr = v.As<Napi::Array>();
        for (uint32_t i = 0; i < arr.Length(); i++) {
          Napi::Value e = arr.Get(i);
          if (!e.IsNumber() && !e.IsBigInt()) BadArg(op, spec, "an integer or an array of integers", v);
          try {
            list.push_back(ToInt(e, name));
          } catch (const ArgumentError&) {
            BadArg(op, spec, "an integer or an array of integers", v);
          }
        }
      } else {
        BadArg(op, spec, "an integer or an array of integers", v);
      }
      return list;
    }
    case Kind::Float:
      if (!v.IsNumber()) BadArg(op, spec, "a number", v);
      return v.As<Napi::Number>().DoubleValue();
    case Kind::FloatList: {
      std::vector<double> list;
      if (v.IsNumber()) {
        list.assign(spec.fixedLength > 0 ? spec.fixedLength : 1, v.As<Napi::Number>().DoubleValue());
      } else if (v.IsArray()) {
        auto arr = v.As<Napi::Array>();
        for (uint32_t i = 0; i < arr.Length(); i++) {
          Napi::Value e = arr.Get(i);
          if (!e.IsNumber()) BadArg(op, spec, "a number or an array of numbers", v);
          list.push_back(e.As<Napi::Number>().DoubleValue());
        }
      } else {
        BadArg(op, spec, "a number or an array of numbers", v);
      }
      return list;
    }
    case Kind::Bool:
      if (!v.IsBoolean()) BadArg(op, spec, "a boolean", v);
      return v.As<Napi::Boolean>().Value();
    case Kind::BoolList: {
      if (!v.IsArray()) BadArg(op, spec, "an array of booleans", v);
      auto arr = v.As<Napi::Array>();
      c10::List<bool> list;
      for (uint32_t i = 0; i < arr.Length(); i++) {
        Napi::Value e = arr.Get(i);
        if (!e.IsBoolean()) BadArg(op, spec, "an array of booleans", v);
        list.push_back(e.As<Napi::Boolean>().Value());
      }
      return list;
    }
    case Kind::Scalar:
      if (v.IsBoolean() || v.IsBigInt() || v.IsNumber()) return ToScalar(v);
      BadArg(op, spec, "a number", v);
    case Kind::String:
      if (!v.IsString()) BadArg(op, spec, "a string", v);
      return v.As<Napi::String>().Utf8Value();
    case Kind::Device:
      if (!v.IsString()) BadArg(op, spec, "a device string such as 'cpu' or 'cuda:0'", v);
      return c10::Device(v.As<Napi::String>().Utf8Value());
    case Kind::Generator:
      if (const at::Generator* g = UnwrapGenerator(v)) return *g;
      BadArg(op, spec, "a Generator", v);
    case Kind::Unsupported: BadArg(op, spec, "left out (the addon passes its default)", v);
  }
  BadArg(op, spec, "valid", v);
}

Napi::Value FromIValue(Napi::Env env, const c10::IValue& v) {
  if (v.isTensor()) return WrapTensor(env, v.toTensor());
  if (v.isTensorList()) {
    auto list = v.toTensorList();
    auto arr = Napi::Array::New(env, list.size());
    for (size_t i = 0; i < list.size(); i++) arr.Set(i, WrapTensor(env, list.get(i)));
    return arr;
  }
  if (v.isInt()) return Napi::Number::New(env, static_cast<double>(v.toInt()));
  if (v.isDouble()) return Napi::Number::New(env, v.toDouble());
  if (v.isBool()) return Napi::Boolean::New(env, v.toBool());
  if (v.isScalar()) {
    auto s = v.toScalar();
    if (s.isBoolean()) return Napi::Boolean::New(env, s.toBool());
    if (s.isIntegral(false)) return Napi::Number::New(env, static_cast<double>(s.toLong()));
    return Napi::Number::New(env, s.toDouble());
  }
  if (v.isIntList()) {
    auto list = v.toIntList();
    auto arr = Napi::Array::New(env, list.size());
    for (size_t i = 0; i < list.size(); i++) arr.Set(i, Napi::Number::New(env, static_cast<double>(list.get(i))));
    return arr;
  }
  if (v.isNone()) return env.Undefined();
  if (v.isString()) return Napi::String::New(env, v.toStringRef());
  if (v.isObject()) return WrapObject(env, v);
  throw NativeError("operator returned a value the addon cannot convert: " + v.tagKind());
}

// op(name, overload) -> handle for call()
Napi::Value Op(const Napi::CallbackInfo& info) {
  auto* entry = Lookup(ToString(info[0], "name"), info.Length() > 1 ? ToString(info[1], "overload") : "");
  return Napi::External<OpEntry>::New(info.Env(), entry);
}

// call(opHandle, ...args): missing or undefined arguments take the schema's default.
Napi::Value Call(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsExternal()) throw ArgumentError("call(): first argument must be an operator handle");
  const OpEntry& op = *info[0].As<Napi::External<OpEntry>>().Data();
  size_t given = info.Length() - 1;
  if (given > op.args.size()) {
    throw ArgumentError(op.display + "() takes " + std::to_string(op.args.size()) + " arguments but " +
                        std::to_string(given) + " were given");
  }
  // One stack per thread, reused: no allocation per call.
  thread_local torch::jit::Stack stack;
  struct ClearOnExit {
    torch::jit::Stack& s;
    ~ClearOnExit() { s.clear(); }  // the thread_local stack must not keep tensors alive
  } clearOnExit{stack};
  stack.clear();
  Accounting& acc = *State(env).accounting;
  for (size_t i = 0; i < op.args.size(); i++) {
    const ArgSpec& spec = op.args[i];
    Napi::Value v = i < given ? info[i + 1] : env.Undefined();
    // Fast path for the common case, a tensor handle: one napi call, no typeof.
    double handle;
    if (spec.kind == Kind::Tensor && napi_get_value_double(env, v, &handle) == napi_ok) {
      Slot* slot = FindSlot(acc, handle);
      if (!slot)
        throw ArgumentError(op.display + "(): argument '" + spec.name + "' is a Tensor that has been disposed");
      stack.emplace_back(slot->tensor);
      continue;
    }
    napi_valuetype type = v.Type();
    if (type == napi_undefined || (type == napi_null && spec.optional)) {
      if (spec.defaultValue) {
        stack.push_back(*spec.defaultValue);
      } else if (spec.optional) {
        stack.emplace_back();
      } else {
        throw ArgumentError(op.display + "(): missing required argument '" + spec.name + "'");
      }
    } else {
      stack.push_back(ToIValue(op, spec, v, type));
    }
  }
  op.handle.callBoxed(stack);
  for (const auto& r : stack) {
    if (!r.isTensor() && !r.isTensorList() && !r.isNone())
      RefuseWhileTracing(op.display + "() returns a " + r.tagKind());
  }
  Napi::Value result;
  if (stack.empty()) {
    result = env.Undefined();
  } else if (stack.size() == 1) {
    int a = op.returnsArg[0];
    result = a >= 0 ? info[a + 1] : FromIValue(env, stack[0]);
  } else {
    auto arr = Napi::Array::New(env, stack.size());
    for (size_t i = 0; i < stack.size(); i++) {
      int a = op.returnsArg[i];
      arr.Set(i, a >= 0 ? info[a + 1] : FromIValue(env, stack[i]));
    }
    result = arr;
  }
  return result;
}

// disposeObject(h): frees a custom-class object (packed weights) now, not when the GC collects its handle.
Napi::Value DisposeObject(const Napi::CallbackInfo& info) {
  c10::IValue* obj = UnwrapObject(info[0]);
  if (!obj) throw ArgumentError("disposeObject: expected an object handle, got " + Shown(info[0]));
  *obj = c10::IValue();
  return info.Env().Undefined();
}

// atenSchemas(): every aten operator registered with the dispatcher, as data
// for scripts/gen-tensor-api.ts (Debian's libtorch-dev ships no
// native_functions.yaml; the registry is the same on 1.13 and 2.x). Each entry:
// [name, overload, args, returns]; an arg is [name, type, kwargOnly, default
// (printed, or null), writes]; a return is [type, writes]. `real_type` keeps
// ScalarType/Layout/MemoryFormat apart from int.
Napi::Value AtenSchemas(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto names = c10::Dispatcher::singleton().getAllOpNames();
  auto out = Napi::Array::New(env);
  uint32_t k = 0;
  for (const auto& n : names) {
    if (n.name.rfind("aten::", 0) != 0) continue;
    auto handle = c10::Dispatcher::singleton().findSchema(n);
    if (!handle || !handle->hasSchema()) continue;
    const auto& schema = handle->schema();
    auto args = Napi::Array::New(env);
    uint32_t i = 0;
    for (const auto& a : schema.arguments()) {
      auto e = Napi::Array::New(env, 5);
      e.Set(0u, a.name());
      std::string type = a.real_type()->annotation_str();
      if (a.N()) type += "[" + std::to_string(*a.N()) + "]";
      e.Set(1u, type);
      e.Set(2u, a.kwarg_only());
      if (a.default_value()) {
        std::ostringstream s;
        s << *a.default_value();
        e.Set(3u, s.str());
      } else {
        e.Set(3u, env.Null());
      }
      e.Set(4u, a.alias_info() != nullptr && a.alias_info()->isWrite());
      args.Set(i++, e);
    }
    auto rets = Napi::Array::New(env);
    i = 0;
    for (const auto& r : schema.returns()) {
      auto e = Napi::Array::New(env, 2);
      e.Set(0u, r.type()->annotation_str());
      e.Set(1u, r.alias_info() != nullptr && r.alias_info()->isWrite());
      rets.Set(i++, e);
    }
    auto entry = Napi::Array::New(env, 4);
    entry.Set(0u, n.name.substr(6));
    entry.Set(1u, n.overload_name);
    entry.Set(2u, args);
    entry.Set(3u, rets);
    out.Set(k++, entry);
  }
  return out;
}

}  // namespace

void InitOps(Napi::Env env, Napi::Object exports) {
  Export<AtenSchemas>(env, exports, "atenSchemas");
  Export<DisposeObject>(env, exports, "disposeObject");
  Export<Op>(env, exports, "op");
  Export<Call>(env, exports, "call");
}

}  // namespace vggtorch
