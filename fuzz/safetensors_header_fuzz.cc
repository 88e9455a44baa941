// libFuzzer harness of the safetensors header parser (native/io/safetensors_header.cc), built
// without libtorch by scripts/fuzz.sh. The input is a whole file. Any exception is a clean
// refusal; a crash, sanitizer report, hang or broken invariant below is a bug.
#include <cstdint>
#include <cstdlib>
#include <stdexcept>

#include "io/safetensors_header.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace smolvla::io;
  try {
    const uint64_t header_len = safetensors_header_length(data, size);
    const SafetensorsHeader h = parse_safetensors_header(data + 8, static_cast<size_t>(header_len), size);
    // What the loader relies on: every tensor lies inside the file, with the bytes its shape needs.
    const uint64_t data_len = size - h.data_start;
    for (const TensorEntry& t : h.tensors) {
      if (t.begin > t.end || t.end > data_len) std::abort();
      uint64_t numel = 1;
      for (int64_t d : t.shape) numel *= static_cast<uint64_t>(d);
      if (numel * safetensors_dtype_size(t.dtype) != t.end - t.begin) std::abort();
    }
  } catch (const std::runtime_error&) {
  }
  return 0;
}
