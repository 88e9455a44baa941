// safetensors read (into memory, never mapped) and atomic write. Format: u64 little-endian header
// length, a JSON header {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}},
// raw data; the header rules are in io/safetensors_header.h.
#pragma once

#include <ATen/core/Tensor.h>

#include "io/safetensors_header.h"

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

// A file opened and its header checked (as read_safetensors does), whose tensors are read one at a
// time: a model loads its weights without holding the whole file beside them (a float32 checkpoint
// of the full-size model is 2 GB).
class SafetensorsReader {
 public:
  explicit SafetensorsReader(const std::string& path);
  ~SafetensorsReader();
  SafetensorsReader(const SafetensorsReader&) = delete;
  SafetensorsReader& operator=(const SafetensorsReader&) = delete;

  const SafetensorsHeader& header() const { return header_; }
  // A new CPU tensor holding the entry's values (the entry is one of header().tensors).
  at::Tensor read(const TensorEntry& entry) const;
  // Bytes `n` at `offset` into `out`; an error (never a fault) if the file shrank since it was opened.
  void read_bytes(void* out, uint64_t n, uint64_t offset) const;
  uint64_t file_size() const { return file_size_; }

 private:
  std::string path_;
  int fd_;
  uint64_t file_size_ = 0;
  SafetensorsHeader header_;
};

// Writes to `<path>.tmp-<pid>`, fsyncs, renames over `path` and fsyncs the directory, so a crash
// leaves either the old file or the new one. Tensors may live on any device and be non-contiguous.
void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata);

}  // namespace smolvla::io
