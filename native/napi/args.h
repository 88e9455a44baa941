// Typed access to N-API call arguments; mistakes become ArgumentErrors naming the argument.
// Model and trainer methods take one parameter object (Params); the small free functions (ops,
// runtime) take positional arguments (arg_*).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>
#include <napi.h>

#include <map>
#include <string>
#include <vector>

namespace smolvla::napi {

// Conversions of one JS value, naming it `name` on a mismatch.
at::Tensor to_tensor(const Napi::Value& v, const std::string& name);
int64_t to_int(const Napi::Value& v, const std::string& name);
double to_number(const Napi::Value& v, const std::string& name);
bool to_bool(const Napi::Value& v, const std::string& name);
std::string to_string(const Napi::Value& v, const std::string& name);

at::Tensor arg_tensor(const Napi::CallbackInfo& info, size_t index, const std::string& name);
int64_t arg_int(const Napi::CallbackInfo& info, size_t index, const std::string& name);
double arg_number(const Napi::CallbackInfo& info, size_t index, const std::string& name);
bool arg_bool(const Napi::CallbackInfo& info, size_t index, const std::string& name);
std::string arg_string(const Napi::CallbackInfo& info, size_t index, const std::string& name);
std::vector<int64_t> arg_shape(const Napi::CallbackInfo& info, size_t index, const std::string& name);

// The parameter object of a method (its first argument). Keys are named as in JS; an absent key is
// undefined or null.
class Params {
 public:
  explicit Params(const Napi::CallbackInfo& info);

  bool has(const char* key) const;
  Napi::Value get(const char* key) const { return obj_.Get(key); }
  at::Tensor tensor(const char* key) const { return to_tensor(get(key), key); }
  at::Tensor optional_tensor(const char* key) const;  // undefined tensor when absent
  int64_t integer(const char* key) const { return to_int(get(key), key); }
  double number(const char* key) const { return to_number(get(key), key); }
  std::string string(const char* key) const { return to_string(get(key), key); }
  bool boolean(const char* key, bool absent) const { return has(key) ? to_bool(get(key), key) : absent; }
  std::vector<std::string> strings(const char* key) const;                  // empty when absent
  std::map<std::string, std::string> string_map(const char* key) const;     // empty when absent
  std::vector<std::pair<std::string, at::Tensor>> tensor_map(const char* key) const;  // empty when absent

 private:
  Napi::Object obj_;
};

// "float32", "bfloat16", "int64", "bool"... <-> c10 types.
at::ScalarType parse_dtype(const std::string& text, const std::string& name);
std::string dtype_name(at::ScalarType type);
// "cpu", "cuda", "cuda:1": an ArgumentError when CUDA is asked for and not available.
c10::Device parse_device(const std::string& text, const std::string& name);

}  // namespace smolvla::napi
