#include "core/check.h"

#include <sstream>

namespace smolvla {

std::string describe(const at::Tensor& t) {
  if (!t.defined()) return "an undefined tensor";
  std::ostringstream out;
  out << c10::toString(t.scalar_type()) << " (";
  for (int64_t i = 0; i < t.dim(); ++i) out << (i ? ", " : "") << t.size(i);
  out << ") on " << t.device();
  std::string s = out.str();
  // c10 names dtypes "Float", "Bool"...; use the torch-style lower-case names users know.
  static const std::pair<const char*, const char*> names[] = {
      {"Float (", "float32 ("}, {"Double (", "float64 ("}, {"Half (", "float16 ("},
      {"BFloat16 (", "bfloat16 ("}, {"Long (", "int64 ("}, {"Int (", "int32 ("},
      {"Short (", "int16 ("}, {"Char (", "int8 ("}, {"Byte (", "uint8 ("}, {"Bool (", "bool ("}};
  for (const auto& [from, to] : names) {
    if (s.rfind(from, 0) == 0) return to + s.substr(std::string(from).size());
  }
  return s;
}

void fail_argument(const std::string& name, const std::string& expected, const at::Tensor& got) {
  throw ArgumentError("argument '" + name + "': expected " + expected + ", got " + describe(got));
}

void fail_argument(const std::string& name, const std::string& message) {
  throw ArgumentError("argument '" + name + "': " + message);
}

void expect_defined(const at::Tensor& t, const std::string& name, const std::string& expected) {
  if (!t.defined()) fail_argument(name, expected, t);
}

void expect_dim(const at::Tensor& t, const std::string& name, int64_t dim, const std::string& expected) {
  expect_defined(t, name, expected);
  if (t.dim() != dim) fail_argument(name, expected, t);
}

void expect_size(const at::Tensor& t, const std::string& name, int64_t axis, int64_t size,
                 const std::string& expected) {
  if (t.dim() <= axis || t.size(axis) != size) fail_argument(name, expected, t);
}

void expect_floating(const at::Tensor& t, const std::string& name, const std::string& expected) {
  expect_defined(t, name, expected);
  if (!at::isFloatingType(t.scalar_type())) fail_argument(name, expected, t);
}

void expect_same_device(const at::Tensor& a, const std::string& name, const at::Tensor& ref) {
  if (a.device() != ref.device()) {
    std::ostringstream out;
    out << "expected a tensor on " << ref.device() << ", got one on " << a.device();
    fail_argument(name, out.str());
  }
}

void expect_positive(int64_t value, const std::string& name) {
  if (value <= 0) fail_argument(name, "expected a positive integer, got " + std::to_string(value));
}

void expect_non_negative(int64_t value, const std::string& name) {
  if (value < 0) fail_argument(name, "expected a non-negative integer, got " + std::to_string(value));
}

}  // namespace smolvla
