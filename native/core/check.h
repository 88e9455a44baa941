// Argument checking for everything the addon exposes. Errors name the argument, what was
// expected and what was received, so the JS Error a user sees is actionable on its own.
#pragma once

#include <ATen/core/Tensor.h>

#include <stdexcept>
#include <string>

namespace smolvla {

// Thrown for bad user input; the N-API layer turns it into a JS TypeError-like Error.
struct ArgumentError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// Thrown when an object is used after dispose(); surfaces with the ERR_SMOLVLA_DISPOSED code.
struct DisposedError : std::logic_error {
  using std::logic_error::logic_error;
};

// A file that is missing, not a regular file, unreadable or malformed (ERR_SMOLVLA_IO).
struct IoError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// NaN or infinity where finite numbers are required, e.g. in checkpoint weights
// (ERR_SMOLVLA_NOT_FINITE).
struct NotFiniteError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// "float32 (2, 3) on cpu"
std::string describe(const at::Tensor& t);

[[noreturn]] void fail_argument(const std::string& name, const std::string& expected, const at::Tensor& got);
[[noreturn]] void fail_argument(const std::string& name, const std::string& message);

// `expected` is a human description of the whole expectation, e.g. "a bool tensor of shape (B, N)".
void expect_defined(const at::Tensor& t, const std::string& name, const std::string& expected);
void expect_dim(const at::Tensor& t, const std::string& name, int64_t dim, const std::string& expected);
void expect_size(const at::Tensor& t, const std::string& name, int64_t axis, int64_t size, const std::string& expected);
void expect_floating(const at::Tensor& t, const std::string& name, const std::string& expected);
void expect_same_device(const at::Tensor& a, const std::string& name, const at::Tensor& ref);
void expect_positive(int64_t value, const std::string& name);
void expect_non_negative(int64_t value, const std::string& name);

}  // namespace smolvla
