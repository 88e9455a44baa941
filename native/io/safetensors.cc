#include "io/safetensors.h"

#include <ATen/ATen.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace smolvla::io {
namespace {

using json = nlohmann::json;

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error("safetensors file '" + path + "': " + what);
}

struct DtypeName {
  const char* name;
  at::ScalarType type;
};
constexpr DtypeName kDtypes[] = {{"F64", at::kDouble}, {"F32", at::kFloat},  {"F16", at::kHalf},
                                 {"BF16", at::kBFloat16}, {"I64", at::kLong}, {"I32", at::kInt},
                                 {"I16", at::kShort},    {"I8", at::kChar},   {"U8", at::kByte},
                                 {"BOOL", at::kBool}};

at::ScalarType dtype_from_name(const std::string& path, const std::string& tensor, const std::string& name) {
  for (const auto& d : kDtypes) {
    if (name == d.name) return d.type;
  }
  fail(path, "tensor '" + tensor + "' has unsupported dtype '" + name + "'");
}

const char* dtype_to_name(at::ScalarType type) {
  for (const auto& d : kDtypes) {
    if (type == d.type) return d.name;
  }
  throw std::runtime_error(std::string("safetensors: cannot store dtype ") + c10::toString(type));
}

// A private, writable (copy-on-write) mapping: tensors may be modified in place without touching
// the file, and the pages are shared with the page cache until they are.
struct Mapping {
  void* data = nullptr;
  size_t size = 0;
  ~Mapping() {
    if (data && data != MAP_FAILED) munmap(data, size);
  }
};

struct Header {
  json entries;
  uint64_t data_start = 0;
};

Header parse_header(const std::string& path, const uint8_t* bytes, size_t file_size) {
  if (file_size < 8) fail(path, "truncated: " + std::to_string(file_size) + " bytes, shorter than the 8-byte header length");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];
  if (header_len > file_size - 8) {
    fail(path, "truncated or corrupt: header length " + std::to_string(header_len) + " exceeds the file size " +
                   std::to_string(file_size));
  }
  Header h;
  try {
    h.entries = json::parse(bytes + 8, bytes + 8 + header_len);
  } catch (const json::exception& e) {
    fail(path, std::string("corrupt JSON header: ") + e.what());
  }
  if (!h.entries.is_object()) fail(path, "corrupt header: not a JSON object");
  h.data_start = 8 + header_len;
  return h;
}

int64_t checked_numel(const std::string& path, const std::string& name, const json& shape, std::vector<int64_t>& out) {
  if (!shape.is_array()) fail(path, "tensor '" + name + "' has no shape array");
  int64_t numel = 1;
  for (const auto& s : shape) {
    if (!s.is_number_integer() || s.get<int64_t>() < 0) fail(path, "tensor '" + name + "' has a bad shape entry");
    out.push_back(s.get<int64_t>());
    numel *= out.back();
  }
  return numel;
}

}  // namespace

// Mapping is lazy: only the pages of tensors that are used are ever read.
SafetensorsContent read_safetensors(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    ::close(fd);
    fail(path, std::string("cannot stat: ") + std::strerror(errno));
  }
  auto map = std::make_shared<Mapping>();
  map->size = static_cast<size_t>(st.st_size);
  if (map->size == 0) {
    ::close(fd);
    fail(path, "empty file");
  }
  map->data = mmap(nullptr, map->size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map->data == MAP_FAILED) fail(path, std::string("cannot map: ") + std::strerror(errno));
  const auto* bytes = static_cast<uint8_t*>(map->data);

  Header header = parse_header(path, bytes, map->size);
  SafetensorsContent content;
  for (const auto& [name, entry] : header.entries.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) fail(path, "__metadata__ is not an object");
      for (const auto& [k, v] : entry.items()) {
        content.metadata[k] = v.is_string() ? v.get<std::string>() : v.dump();
      }
      continue;
    }
    if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") || !entry.contains("data_offsets")) {
      fail(path, "tensor '" + name + "' lacks dtype, shape or data_offsets");
    }
    const at::ScalarType type = dtype_from_name(path, name, entry["dtype"].get<std::string>());
    std::vector<int64_t> shape;
    const int64_t numel = checked_numel(path, name, entry["shape"], shape);
    const auto& offs = entry["data_offsets"];
    if (!offs.is_array() || offs.size() != 2 || !offs[0].is_number_unsigned() || !offs[1].is_number_unsigned()) {
      fail(path, "tensor '" + name + "' has malformed data_offsets");
    }
    const uint64_t begin = offs[0].get<uint64_t>(), end = offs[1].get<uint64_t>();
    const uint64_t item = c10::elementSize(type);
    if (end < begin || end - begin != static_cast<uint64_t>(numel) * item) {
      fail(path, "tensor '" + name + "' data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                     ") do not match its shape and dtype");
    }
    if (header.data_start + end > map->size) {
      fail(path, "truncated: tensor '" + name + "' ends at byte " + std::to_string(header.data_start + end) +
                     " of a " + std::to_string(map->size) + "-byte file");
    }
    uint8_t* ptr = const_cast<uint8_t*>(bytes) + header.data_start + begin;
    const auto opts = at::TensorOptions().dtype(type).device(at::kCPU);
    at::Tensor t;
    if (reinterpret_cast<uintptr_t>(ptr) % item != 0) {
      // Misaligned data (legal in the format): copy into an aligned buffer.
      t = at::empty(shape, opts);
      std::memcpy(t.data_ptr(), ptr, end - begin);
    } else {
      t = at::from_blob(ptr, shape, [map](void*) {}, opts);
    }
    content.tensors.emplace_back(name, std::move(t));
  }
  return content;
}

void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<at::Tensor> cpu;
  cpu.reserve(tensors.size());
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name == "__metadata__" || header.contains(name)) {
      throw std::runtime_error("safetensors write '" + path + "': duplicate or reserved tensor name '" + name + "'");
    }
    if (!tensor.defined()) throw std::runtime_error("safetensors write '" + path + "': tensor '" + name + "' is undefined");
    at::Tensor t = tensor.detach().to(at::kCPU).contiguous();
    const uint64_t bytes = t.numel() * t.element_size();
    header[name] = {{"dtype", dtype_to_name(t.scalar_type())}, {"shape", t.sizes().vec()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    cpu.push_back(std::move(t));
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keep the data 8-byte aligned

  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail(path, std::string("cannot create '") + tmp + "': " + std::strerror(errno));
  auto write_all = [&](const void* data, size_t n) {
    const auto* p = static_cast<const uint8_t*>(data);
    while (n > 0) {
      const ssize_t w = ::write(fd, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        const std::string err = std::strerror(errno);
        ::close(fd);
        ::unlink(tmp.c_str());
        fail(path, "write failed: " + err);
      }
      p += w;
      n -= static_cast<size_t>(w);
    }
  };
  uint8_t len[8];
  uint64_t header_len = text.size();
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(header_len >> (8 * i));
  write_all(len, 8);
  write_all(text.data(), text.size());
  for (const auto& t : cpu) write_all(t.data_ptr(), t.numel() * t.element_size());
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    fail(path, std::string("flush failed: ") + std::strerror(errno));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string err = std::strerror(errno);
    ::unlink(tmp.c_str());
    fail(path, "rename failed: " + err);
  }
  const auto slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash);
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace smolvla::io
