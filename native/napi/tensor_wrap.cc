#include "napi/tensor_wrap.h"

#include <ATen/ops/empty.h>

#include <cstring>

#include "core/check.h"
#include "napi/addon_data.h"
#include "napi/args.h"
#include "napi/errors.h"

namespace smolvla::napi {
namespace {

int64_t cpu_bytes(const at::Tensor& t) {
  return t.defined() && t.device().is_cpu() ? static_cast<int64_t>(t.numel() * t.element_size()) : 0;
}

// tensorFromBuffer(view: ArrayBufferView, shape: number[], dtype: string): copies the bytes, since
// JS may change its buffer while native work runs on another thread.
Napi::Value TensorFromBuffer(const Napi::CallbackInfo& info) {
  Napi::Value v = info.Length() > 0 ? info[0] : info.Env().Undefined();
  if (!v.IsTypedArray() && !v.IsDataView()) fail_argument("data", "expected a TypedArray or a DataView");
  const std::vector<int64_t> shape = arg_shape(info, 1, "shape");
  const at::ScalarType type = parse_dtype(arg_string(info, 2, "dtype"), "dtype");
  // A DataView is not a TypedArray: read its buffer, offset and length through its own type.
  Napi::ArrayBuffer buffer;
  size_t byte_offset = 0, byte_len = 0;
  if (v.IsDataView()) {
    Napi::DataView view = v.As<Napi::DataView>();
    buffer = view.ArrayBuffer();
    byte_offset = view.ByteOffset();
    byte_len = view.ByteLength();
  } else {
    Napi::TypedArray view = v.As<Napi::TypedArray>();
    buffer = view.ArrayBuffer();
    byte_offset = view.ByteOffset();
    byte_len = view.ByteLength();
  }
  int64_t numel = 1;
  for (int64_t s : shape) numel *= s;
  const size_t expected = static_cast<size_t>(numel) * c10::elementSize(type);
  if (byte_len != expected) {
    fail_argument("data", "expected " + std::to_string(expected) + " bytes for shape " + c10::str(shape) + " of " +
                              dtype_name(type) + ", got " + std::to_string(byte_len));
  }
  at::Tensor t = at::empty(shape, at::TensorOptions().dtype(type));
  if (expected > 0) {
    const auto* src = static_cast<const uint8_t*>(buffer.Data()) + byte_offset;
    std::memcpy(t.data_ptr(), src, expected);
  }
  return TensorWrap::Wrap(info.Env(), std::move(t));
}

}  // namespace

AddonData& addon_data(Napi::Env env) {
  auto* data = env.GetInstanceData<AddonData>();
  if (data == nullptr) {
    data = new AddonData();
    env.SetInstanceData(data);
  }
  return *data;
}

void TensorWrap::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = DefineClass(env, "NativeTensor",
                                    {InstanceAccessor<&TensorWrap::Shape>("shape"),
                                     InstanceAccessor<&TensorWrap::Dtype>("dtype"),
                                     InstanceAccessor<&TensorWrap::Device>("device"),
                                     InstanceAccessor<&TensorWrap::Disposed>("disposed"),
                                     InstanceMethod<&TensorWrap::Dispose>("dispose"),
                                     InstanceMethod<&TensorWrap::Data>("data"),
                                     InstanceMethod<&TensorWrap::To>("to"),
                                     InstanceMethod<&TensorWrap::Describe>("describe")});
  addon_data(env).tensor_ctor = Napi::Persistent(ctor);
  exports.Set("NativeTensor", ctor);
  exports.Set("tensorFromBuffer", Napi::Function::New(env, guarded<TensorFromBuffer>, "tensorFromBuffer"));
}

Napi::Object TensorWrap::Wrap(Napi::Env env, at::Tensor tensor) {
  at::Tensor owned = std::move(tensor);
  return addon_data(env).tensor_ctor.New({Napi::External<at::Tensor>::New(env, &owned)});
}

at::Tensor TensorWrap::TensorOf(const Napi::Value& v, const std::string& name) {
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(addon_data(v.Env()).tensor_ctor.Value())) {
    fail_argument(name, "expected a Tensor");
  }
  TensorWrap* w = TensorWrap::Unwrap(v.As<Napi::Object>());
  if (!w->tensor_.defined()) fail_argument(name, "the Tensor was disposed");
  return w->tensor_;
}

TensorWrap::TensorWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TensorWrap>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throw Napi::TypeError::New(info.Env(), "NativeTensor is created by the library (e.g. Tensor.from), not with new");
  }
  tensor_ = std::move(*info[0].As<Napi::External<at::Tensor>>().Data());
  accounted_ = cpu_bytes(tensor_);
  if (accounted_ > 0) Napi::MemoryManagement::AdjustExternalMemory(info.Env(), accounted_);
}

TensorWrap::~TensorWrap() { release(); }

void TensorWrap::release() {
  if (accounted_ > 0) {
    Napi::MemoryManagement::AdjustExternalMemory(Env(), -accounted_);
    accounted_ = 0;
  }
  tensor_ = at::Tensor();
}

const at::Tensor& TensorWrap::live(const char* method) const {
  if (!tensor_.defined()) fail_argument("this", std::string("cannot call ") + method + " on a disposed Tensor");
  return tensor_;
}

Napi::Value TensorWrap::Shape(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    const at::Tensor& t = live("shape");
    Napi::Array out = Napi::Array::New(info.Env(), t.dim());
    for (int64_t i = 0; i < t.dim(); ++i) out.Set(static_cast<uint32_t>(i), Napi::Number::New(info.Env(), static_cast<double>(t.size(i))));
    return out;
  });
}

Napi::Value TensorWrap::Dtype(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value { return Napi::String::New(info.Env(), dtype_name(live("dtype").scalar_type())); });
}

Napi::Value TensorWrap::Device(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value { return Napi::String::New(info.Env(), live("device").device().str()); });
}

Napi::Value TensorWrap::Disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !tensor_.defined()); }

Napi::Value TensorWrap::Dispose(const Napi::CallbackInfo& info) {
  release();
  return info.Env().Undefined();
}

// A copy of the tensor's bytes in an ArrayBuffer that V8 allocates and owns. A zero-copy external
// buffer over the tensor storage looked cheaper, but V8 sees only the small JS object, so it rarely
// collects those buffers: 1 500 read-backs of 4 MB grew RSS by 6 GB before any GC ran. Memory V8
// allocates itself is counted by its heuristics and freed by GC like any other buffer; the copy is a
// memcpy, small next to the work that made the tensor. The buffer is independent of the handle, so
// dispose() never invalidates it and JS writes never reach the tensor.
Napi::Value TensorWrap::Data(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    const at::Tensor t = live("data").to(at::kCPU).contiguous();
    const size_t bytes = t.numel() * t.element_size();
    Napi::ArrayBuffer out = Napi::ArrayBuffer::New(info.Env(), bytes);
    if (bytes > 0) std::memcpy(out.Data(), t.data_ptr(), bytes);
    return out;
  });
}

// to(dtype?: string, device?: string) -> a new handle (the same storage when nothing changes).
Napi::Value TensorWrap::To(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    const at::Tensor& t = live("to");
    at::ScalarType type = t.scalar_type();
    c10::Device device = t.device();
    if (info.Length() > 0 && !info[0].IsUndefined() && !info[0].IsNull()) type = parse_dtype(arg_string(info, 0, "dtype"), "dtype");
    if (info.Length() > 1 && !info[1].IsUndefined() && !info[1].IsNull()) device = parse_device(arg_string(info, 1, "device"), "device");
    return Wrap(info.Env(), t.to(device, type));
  });
}

Napi::Value TensorWrap::Describe(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), tensor_.defined() ? describe(tensor_) : std::string("disposed"));
}

}  // namespace smolvla::napi
