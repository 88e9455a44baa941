#include "io/safetensors_header.h"

#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace smolvla::io {
namespace {

using json = nlohmann::json;

[[noreturn]] void fail(const std::string& what) { throw std::runtime_error(what); }

// The deepest well-formed header: {"name": {"shape": [ ... ]}}. Checked on the raw bytes before the
// JSON parser runs, so a header of a million '[' is refused in one linear pass instead of building
// (and later destroying or printing, both recursive) a million nested values.
constexpr int kMaxDepth = 3;

void check_nesting(const uint8_t* text, size_t len) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < len; ++i) {
    const uint8_t c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > kMaxDepth) fail("corrupt header: JSON nested deeper than " + std::to_string(kMaxDepth) + " levels");
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
}

// The JSON text ends at the last '}'; anything after it is padding and must be spaces (what the
// reference writer pads with). A header length one byte short or long is caught here or by the
// exact-coverage rule below, never read as weights shifted by a byte.
size_t json_extent(const uint8_t* text, size_t len) {
  if (len == 0 || text[0] != '{') fail("corrupt header: it must start with '{'");
  size_t end = len;
  while (end > 0 && text[end - 1] == ' ') --end;
  if (end == 0 || text[end - 1] != '}') fail("corrupt header: it must be a JSON object padded with spaces only");
  return end;
}

uint64_t checked_mul(uint64_t a, uint64_t b, const std::string& name) {
  if (a != 0 && b > std::numeric_limits<uint64_t>::max() / a) fail("tensor '" + name + "': shape overflows 64 bits");
  return a * b;
}

TensorEntry parse_entry(const std::string& name, const json& entry) {
  if (!entry.is_object() || entry.size() != 3 || !entry.contains("dtype") || !entry.contains("shape") ||
      !entry.contains("data_offsets")) {
    fail("tensor '" + name + "' must have exactly dtype, shape and data_offsets");
  }
  TensorEntry t;
  t.name = name;
  const json& dtype = entry["dtype"];
  if (!dtype.is_string()) fail("tensor '" + name + "': dtype is not a string");
  t.dtype = dtype.get<std::string>();
  const size_t item = safetensors_dtype_size(t.dtype);
  if (item == 0) fail("tensor '" + name + "' has unsupported dtype '" + t.dtype + "'");

  const json& shape = entry["shape"];
  if (!shape.is_array()) fail("tensor '" + name + "' has no shape array");
  uint64_t numel = 1;
  for (const json& s : shape) {
    // Sizes must fit int64 (what tensors are indexed with).
    if (!s.is_number_unsigned() || s.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      fail("tensor '" + name + "' has a shape entry that is not a non-negative 64-bit integer");
    }
    const uint64_t d = s.get<uint64_t>();
    numel = checked_mul(numel, d, name);
    t.shape.push_back(static_cast<int64_t>(d));
  }
  const uint64_t bytes = checked_mul(numel, item, name);

  const json& offs = entry["data_offsets"];
  if (!offs.is_array() || offs.size() != 2 || !offs[0].is_number_unsigned() || !offs[1].is_number_unsigned()) {
    fail("tensor '" + name + "' has malformed data_offsets (two non-negative integers expected)");
  }
  t.begin = offs[0].get<uint64_t>();
  t.end = offs[1].get<uint64_t>();
  if (t.end < t.begin || t.end - t.begin != bytes) {
    fail("tensor '" + name + "': data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) + ") hold " +
         (t.end < t.begin ? std::string("a negative length") : std::to_string(t.end - t.begin) + " bytes") + ", its shape and " +
         t.dtype + " need " + std::to_string(bytes));
  }
  return t;
}

}  // namespace

size_t safetensors_dtype_size(const std::string& dtype) {
  static const std::map<std::string, size_t> kSizes = {{"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8},
                                                       {"I32", 4}, {"I16", 2}, {"I8", 1},  {"U8", 1},   {"BOOL", 1}};
  const auto it = kSizes.find(dtype);
  return it == kSizes.end() ? 0 : it->second;
}

uint64_t safetensors_header_length(const uint8_t* first8, uint64_t file_size) {
  if (file_size < 8) fail("truncated: " + std::to_string(file_size) + " bytes, shorter than the 8-byte header length");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | first8[i];
  if (header_len > kMaxHeaderBytes) {
    fail("corrupt: header length " + std::to_string(header_len) + " exceeds the " + std::to_string(kMaxHeaderBytes) + "-byte limit");
  }
  if (header_len > file_size - 8) {
    fail("truncated or corrupt: header length " + std::to_string(header_len) + " exceeds the file size " + std::to_string(file_size));
  }
  return header_len;
}

SafetensorsHeader parse_safetensors_header(const uint8_t* header, size_t header_len, uint64_t file_size) {
  const size_t json_len = json_extent(header, header_len);
  check_nesting(header, json_len);
  json doc;
  try {
    doc = json::parse(header, header + json_len);
  } catch (const json::exception& e) {
    fail(std::string("corrupt JSON header: ") + e.what());
  }
  if (!doc.is_object()) fail("corrupt header: not a JSON object");

  SafetensorsHeader h;
  h.data_start = 8 + static_cast<uint64_t>(header_len);
  for (const auto& [name, entry] : doc.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) fail("__metadata__ is not an object");
      for (const auto& [k, v] : entry.items()) {
        if (!v.is_string()) fail("__metadata__ value '" + k + "' is not a string");
        h.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    h.tensors.push_back(parse_entry(name, entry));
  }

  // Coverage: sorted by offsets, the tensors tile the data section exactly.
  std::vector<const TensorEntry*> order;
  order.reserve(h.tensors.size());
  for (const auto& t : h.tensors) order.push_back(&t);
  std::stable_sort(order.begin(), order.end(),
                   [](const TensorEntry* a, const TensorEntry* b) { return a->begin != b->begin ? a->begin < b->begin : a->end < b->end; });
  uint64_t next = 0;
  for (const TensorEntry* t : order) {
    if (t->begin != next) {
      fail("tensor '" + t->name + "': data_offsets start at " + std::to_string(t->begin) + ", expected " + std::to_string(next) +
           (t->begin < next ? " (overlaps the previous tensor)" : " (a gap before it)"));
    }
    next = t->end;
  }
  const uint64_t data_len = file_size - h.data_start;  // safetensors_header_length checked data_start <= file_size
  if (next != data_len) {
    fail("the tensors cover " + std::to_string(next) + " bytes of a " + std::to_string(data_len) +
         "-byte data section (truncated, padded or a wrong header length)");
  }
  return h;
}

}  // namespace smolvla::io
