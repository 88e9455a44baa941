#include "io/safetensors.h"

#include "core/check.h"
#include "io/safetensors_header.h"

#include <ATen/ATen.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace smolvla::io {
namespace {

using json = nlohmann::json;

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw IoError("safetensors file '" + path + "': " + what);
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

// Opens a regular file for reading. O_NONBLOCK keeps open() itself from waiting on a FIFO with no
// writer (or a device); anything but a regular file is then refused before a byte is read, so a
// FIFO named like a checkpoint cannot hang the process.
int open_regular(const std::string& path, struct stat& st) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) fail(path, std::string("cannot open: ") + std::strerror(errno));
  if (fstat(fd, &st) != 0) {
    const std::string err = std::strerror(errno);
    ::close(fd);
    fail(path, "cannot stat: " + err);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path, "not a regular file (a FIFO, device or directory is never read)");
  }
  return fd;
}

// Reads exactly n bytes at offset; a file that shrank since it was opened gives an error, where
// a memory mapping would have raised SIGBUS and killed the process.
void read_exact(const std::string& path, int fd, void* out, uint64_t n, uint64_t offset) {
  auto* p = static_cast<uint8_t*>(out);
  while (n > 0) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(n, 1u << 30));
    const ssize_t got = ::pread(fd, p, want, static_cast<off_t>(offset));
    if (got < 0) {
      if (errno == EINTR) continue;
      fail(path, std::string("read failed: ") + std::strerror(errno));
    }
    if (got == 0) fail(path, "truncated while reading (the file shrank after it was opened)");
    p += got;
    n -= static_cast<uint64_t>(got);
    offset += static_cast<uint64_t>(got);
  }
}

}  // namespace

SafetensorsReader::SafetensorsReader(const std::string& path) : path_(path) {
  struct stat st {};
  fd_ = open_regular(path, st);
  try {
    file_size_ = static_cast<uint64_t>(st.st_size);
    uint8_t first8[8] = {};
    if (file_size_ >= 8) read_exact(path, fd_, first8, 8, 0);
    try {
      const uint64_t header_len = safetensors_header_length(first8, file_size_);
      std::string text(static_cast<size_t>(header_len), '\0');
      read_exact(path, fd_, text.data(), header_len, 8);
      header_ = parse_safetensors_header(reinterpret_cast<const uint8_t*>(text.data()), text.size(), file_size_);
    } catch (const IoError&) {
      throw;
    } catch (const std::runtime_error& e) {
      fail(path, e.what());
    }
    for (const TensorEntry& e : header_.tensors) dtype_from_name(path, e.name, e.dtype);
  } catch (...) {
    ::close(fd_);  // the destructor does not run for a constructor that throws
    throw;
  }
}

SafetensorsReader::~SafetensorsReader() { ::close(fd_); }

at::Tensor SafetensorsReader::read(const TensorEntry& e) const {
  at::Tensor t = at::empty(e.shape, at::TensorOptions().dtype(dtype_from_name(path_, e.name, e.dtype)).device(at::kCPU));
  if (e.end > e.begin) read_bytes(t.data_ptr(), e.end - e.begin, header_.data_start + e.begin);
  return t;
}

void SafetensorsReader::read_bytes(void* out, uint64_t n, uint64_t offset) const { read_exact(path_, fd_, out, n, offset); }

// The data section is read into one buffer the tensors view (the buffer lives as long as any of
// them): reads cannot fault, unlike a mapping of a file that may be truncated under it.
SafetensorsContent read_safetensors(const std::string& path) {
  const SafetensorsReader file(path);
  SafetensorsHeader header = file.header();
  const uint64_t data_len = file.file_size() - header.data_start;
  auto buffer = std::make_shared<at::Tensor>(at::empty({static_cast<int64_t>(data_len)}, at::TensorOptions().dtype(at::kByte)));
  file.read_bytes(buffer->data_ptr(), data_len, header.data_start);
  auto* base = static_cast<uint8_t*>(buffer->data_ptr());

  SafetensorsContent content;
  content.metadata = std::move(header.metadata);
  for (const TensorEntry& e : header.tensors) {
    const at::ScalarType type = dtype_from_name(path, e.name, e.dtype);
    const auto opts = at::TensorOptions().dtype(type).device(at::kCPU);
    uint8_t* ptr = base + e.begin;
    at::Tensor t;
    if (reinterpret_cast<uintptr_t>(ptr) % c10::elementSize(type) != 0) {
      // Misaligned data (legal in the format): copy into an aligned buffer.
      t = at::empty(e.shape, opts);
      if (e.end > e.begin) std::memcpy(t.data_ptr(), ptr, e.end - e.begin);
    } else {
      t = at::from_blob(ptr, e.shape, [buffer](void*) {}, opts);
    }
    content.tensors.emplace_back(e.name, std::move(t));
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
