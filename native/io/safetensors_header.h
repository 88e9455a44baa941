// The safetensors header, parsed and checked without libtorch (so a coverage-guided fuzzer can
// drive it alone: fuzz/safetensors_header_fuzz.cc). The rules are those of the reference
// implementation (huggingface/safetensors): a little-endian u64 header length N, N bytes of UTF-8
// JSON starting with '{' and padded with spaces, then the data section. Tensors' data_offsets,
// sorted, must start at 0, follow each other without gap or overlap and end exactly at the end of
// the file; each tensor's byte length is its element count times its dtype's size, computed
// without overflow. `__metadata__` maps strings to strings.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace smolvla::io {

// The reference parser's limit: a header larger than this is refused before it is read.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

struct TensorEntry {
  std::string name;
  std::string dtype;  // "F32", "BF16", ... (one of safetensors_dtype_size's names)
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte offsets within the data section
  uint64_t end = 0;
};

struct SafetensorsHeader {
  std::vector<TensorEntry> tensors;  // in name order
  std::map<std::string, std::string> metadata;
  uint64_t data_start = 0;  // 8 + header length
};

// Bytes per element of a dtype name, 0 when the name is not one this library reads.
size_t safetensors_dtype_size(const std::string& dtype);

// The header length from the first 8 bytes, checked against the file size and kMaxHeaderBytes.
// Throws std::runtime_error (message without the file name; callers add it).
uint64_t safetensors_header_length(const uint8_t* first8, uint64_t file_size);

// Parses and validates `header` (the N bytes after the length) of a file of `file_size` bytes.
// Throws std::runtime_error describing the first rule broken.
SafetensorsHeader parse_safetensors_header(const uint8_t* header, size_t header_len, uint64_t file_size);

}  // namespace smolvla::io
