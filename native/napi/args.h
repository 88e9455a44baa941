// Typed access to N-API call arguments; mistakes become ArgumentErrors naming the argument.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>
#include <napi.h>

#include <optional>
#include <string>
#include <vector>

namespace smolvla::napi {

at::Tensor arg_tensor(const Napi::CallbackInfo& info, size_t index, const std::string& name);
std::optional<at::Tensor> arg_optional_tensor(const Napi::CallbackInfo& info, size_t index, const std::string& name);
int64_t arg_int(const Napi::CallbackInfo& info, size_t index, const std::string& name);
double arg_number(const Napi::CallbackInfo& info, size_t index, const std::string& name);
bool arg_bool(const Napi::CallbackInfo& info, size_t index, const std::string& name);
std::string arg_string(const Napi::CallbackInfo& info, size_t index, const std::string& name);
std::vector<int64_t> arg_shape(const Napi::CallbackInfo& info, size_t index, const std::string& name);

// "float32", "bfloat16", "int64", "bool"... <-> c10 types.
at::ScalarType parse_dtype(const std::string& text, const std::string& name);
std::string dtype_name(at::ScalarType type);
// "cpu", "cuda", "cuda:1": an ArgumentError when CUDA is asked for and not available.
c10::Device parse_device(const std::string& text, const std::string& name);

}  // namespace smolvla::napi
