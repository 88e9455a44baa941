#include "napi/args.h"

#include <torch/cuda.h>

#include "core/check.h"
#include "napi/tensor_wrap.h"

namespace smolvla::napi {
namespace {

Napi::Value arg(const Napi::CallbackInfo& info, size_t index) {
  return index < info.Length() ? info[index] : info.Env().Undefined();
}

const std::pair<const char*, at::ScalarType> kDtypes[] = {
    {"float32", at::kFloat}, {"float64", at::kDouble}, {"float16", at::kHalf}, {"bfloat16", at::kBFloat16},
    {"int64", at::kLong},    {"int32", at::kInt},      {"int16", at::kShort},  {"int8", at::kChar},
    {"uint8", at::kByte},    {"bool", at::kBool}};

}  // namespace

at::Tensor to_tensor(const Napi::Value& v, const std::string& name) { return TensorWrap::TensorOf(v, name); }

int64_t to_int(const Napi::Value& v, const std::string& name) {
  if (!v.IsNumber()) fail_argument(name, "expected an integer");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (d != static_cast<double>(static_cast<int64_t>(d))) {
    fail_argument(name, "expected an integer, got " + std::to_string(d));
  }
  return static_cast<int64_t>(d);
}

double to_number(const Napi::Value& v, const std::string& name) {
  if (!v.IsNumber()) fail_argument(name, "expected a number");
  return v.As<Napi::Number>().DoubleValue();
}

bool to_bool(const Napi::Value& v, const std::string& name) {
  if (!v.IsBoolean()) fail_argument(name, "expected a boolean");
  return v.As<Napi::Boolean>().Value();
}

std::string to_string(const Napi::Value& v, const std::string& name) {
  if (!v.IsString()) fail_argument(name, "expected a string");
  return v.As<Napi::String>().Utf8Value();
}

at::Tensor arg_tensor(const Napi::CallbackInfo& info, size_t index, const std::string& name) {
  return to_tensor(arg(info, index), name);
}
int64_t arg_int(const Napi::CallbackInfo& info, size_t index, const std::string& name) { return to_int(arg(info, index), name); }
double arg_number(const Napi::CallbackInfo& info, size_t index, const std::string& name) {
  return to_number(arg(info, index), name);
}
bool arg_bool(const Napi::CallbackInfo& info, size_t index, const std::string& name) { return to_bool(arg(info, index), name); }
std::string arg_string(const Napi::CallbackInfo& info, size_t index, const std::string& name) {
  return to_string(arg(info, index), name);
}

Params::Params(const Napi::CallbackInfo& info) {
  Napi::Value v = arg(info, 0);
  if (!v.IsObject()) fail_argument("options", "expected an options object");
  obj_ = v.As<Napi::Object>();
}

bool Params::has(const char* key) const {
  Napi::Value v = get(key);
  return !v.IsUndefined() && !v.IsNull();
}

at::Tensor Params::optional_tensor(const char* key) const { return has(key) ? tensor(key) : at::Tensor(); }

std::vector<std::string> Params::strings(const char* key) const {
  std::vector<std::string> out;
  if (!has(key)) return out;
  if (!get(key).IsArray()) fail_argument(key, "expected an array of strings");
  Napi::Array a = get(key).As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); ++i) out.push_back(to_string(a.Get(i), std::string(key) + "[" + std::to_string(i) + "]"));
  return out;
}

std::map<std::string, std::string> Params::string_map(const char* key) const {
  std::map<std::string, std::string> out;
  if (!has(key)) return out;
  if (!get(key).IsObject()) fail_argument(key, "expected an object of strings");
  Napi::Object m = get(key).As<Napi::Object>();
  Napi::Array keys = m.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); ++i) {
    const std::string k = keys.Get(i).As<Napi::String>().Utf8Value();
    out[k] = to_string(m.Get(k), std::string(key) + "." + k);
  }
  return out;
}

std::vector<std::pair<std::string, at::Tensor>> Params::tensor_map(const char* key) const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  if (!has(key)) return out;
  if (!get(key).IsObject()) fail_argument(key, "expected an object of Tensors");
  Napi::Object m = get(key).As<Napi::Object>();
  Napi::Array keys = m.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); ++i) {
    const std::string k = keys.Get(i).As<Napi::String>().Utf8Value();
    out.emplace_back(k, to_tensor(m.Get(k), std::string(key) + "." + k));
  }
  return out;
}

std::vector<int64_t> arg_shape(const Napi::CallbackInfo& info, size_t index, const std::string& name) {
  Napi::Value v = arg(info, index);
  if (!v.IsArray()) fail_argument(name, "expected an array of non-negative integers");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<int64_t> shape;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value e = a.Get(i);
    if (!e.IsNumber()) fail_argument(name, "expected an array of non-negative integers");
    const double d = e.As<Napi::Number>().DoubleValue();
    if (d < 0 || d != static_cast<double>(static_cast<int64_t>(d))) {
      fail_argument(name, "expected an array of non-negative integers, entry " + std::to_string(i) + " is " +
                              std::to_string(d));
    }
    shape.push_back(static_cast<int64_t>(d));
  }
  return shape;
}

at::ScalarType parse_dtype(const std::string& text, const std::string& name) {
  for (const auto& [n, t] : kDtypes) {
    if (text == n) return t;
  }
  fail_argument(name, "expected one of float32, float64, float16, bfloat16, int64, int32, int16, int8, uint8, bool; got '" +
                          text + "'");
}

std::string dtype_name(at::ScalarType type) {
  for (const auto& [n, t] : kDtypes) {
    if (type == t) return n;
  }
  return c10::toString(type);
}

c10::Device parse_device(const std::string& text, const std::string& name) {
  c10::Device device(c10::kCPU);
  try {
    device = c10::Device(text);
  } catch (const c10::Error&) {
    fail_argument(name, "expected a device like 'cpu', 'cuda' or 'cuda:1', got '" + text + "'");
  }
  if (device.is_cuda()) {
    if (!torch::cuda::is_available()) {
      fail_argument(name, "CUDA was requested ('" + text +
                              "') but this build of libtorch has no CUDA or no GPU is visible; use 'cpu' or build "
                              "against a CUDA libtorch (see README, 'CUDA')");
    }
    const int64_t count = static_cast<int64_t>(torch::cuda::device_count());
    if (device.has_index() && device.index() >= count) {
      fail_argument(name, "device '" + text + "' does not exist: " + std::to_string(count) + " CUDA device(s) visible");
    }
  } else if (!device.is_cpu()) {
    fail_argument(name, "only 'cpu' and 'cuda[:N]' devices are supported, got '" + text + "'");
  }
  return device;
}

}  // namespace smolvla::napi
