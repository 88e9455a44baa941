// safetensors read (into memory, never mapped) and atomic write. Format: u64 little-endian header
// length, a JSON header {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}},
// raw data; the header rules are in io/safetensors_header.h.
#pragma once

#include <ATen/core/Tensor.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace smolvla::io {

struct SafetensorsContent {
  // In name order. CPU tensors that view one buffer holding the file's data section (read, not
  // mapped: a file truncated while its tensors live cannot fault); the buffer lives as long as any
  // of them.
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  std::map<std::string, std::string> metadata;
};

// Throws std::runtime_error naming the file and the problem (missing, not a regular file, truncated,
// corrupt header, unsupported dtype, offsets that break the format's rules).
SafetensorsContent read_safetensors(const std::string& path);

// Writes to `<path>.tmp-<pid>`, fsyncs, renames over `path` and fsyncs the directory, so a crash
// leaves either the old file or the new one. Tensors may live on any device and be non-contiguous.
void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata);

}  // namespace smolvla::io
