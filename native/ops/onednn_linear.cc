#include "ops/onednn_linear.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/StorageImpl.h>
#include <c10/util/intrusive_ptr.h>

#if __has_include(<oneapi/dnnl/dnnl.h>)
#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_version.h>
// The 2.x C API (operation descriptors); 3.x replaced it, and falls back to libtorch's routes.
#if DNNL_VERSION_MAJOR == 2
#define SMOLVLA_ONEDNN 1
#endif
#endif

#ifdef SMOLVLA_ONEDNN
#include <dlfcn.h>

#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#endif

#include "core/block_pool.h"
#include "core/check.h"

namespace smolvla::ops {

#ifndef SMOLVLA_ONEDNN

bool onednn_available() { return false; }
std::string onednn_status() { return "not compiled in (no oneDNN 2.x header at build time)"; }
at::Tensor onednn_linear(const at::Tensor& x, const at::Tensor&, const at::Tensor&, bool, bool) {
  fail_argument("route", "a GEMM route compiled into this build (oneDNN is not)", x);
}
int64_t onednn_packed_bytes() { return 0; }
void onednn_drop_freed_copies() {}

#else

namespace {

// The library's entry points, looked up by name in libdnnl.so.2.
struct Api {
  decltype(&dnnl_engine_create) engine_create = nullptr;
  decltype(&dnnl_stream_create) stream_create = nullptr;
  decltype(&dnnl_stream_wait) stream_wait = nullptr;
  decltype(&dnnl_stream_destroy) stream_destroy = nullptr;
  decltype(&dnnl_memory_desc_init_by_tag) md_init_by_tag = nullptr;
  decltype(&dnnl_memory_desc_equal) md_equal = nullptr;
  decltype(&dnnl_memory_desc_get_size) md_get_size = nullptr;
  decltype(&dnnl_matmul_desc_init) matmul_desc_init = nullptr;
  decltype(&dnnl_reorder_primitive_desc_create) reorder_pd_create = nullptr;
  decltype(&dnnl_primitive_desc_create) pd_create = nullptr;
  decltype(&dnnl_primitive_desc_query_md) pd_query_md = nullptr;
  decltype(&dnnl_primitive_desc_destroy) pd_destroy = nullptr;
  decltype(&dnnl_primitive_create) prim_create = nullptr;
  decltype(&dnnl_primitive_execute) prim_execute = nullptr;
  decltype(&dnnl_primitive_destroy) prim_destroy = nullptr;
  decltype(&dnnl_memory_create) mem_create = nullptr;
  decltype(&dnnl_memory_destroy) mem_destroy = nullptr;
  decltype(&dnnl_primitive_attr_create) attr_create = nullptr;
  decltype(&dnnl_primitive_attr_destroy) attr_destroy = nullptr;
  decltype(&dnnl_primitive_attr_set_post_ops) attr_set_post_ops = nullptr;
  decltype(&dnnl_post_ops_create) post_ops_create = nullptr;
  decltype(&dnnl_post_ops_destroy) post_ops_destroy = nullptr;
  decltype(&dnnl_post_ops_append_eltwise) post_ops_append_eltwise = nullptr;
  decltype(&dnnl_version) version = nullptr;
  dnnl_engine_t engine = nullptr;
  std::string status;
};

template <typename F>
bool bind(void* lib, const char* name, F& fn, std::string& missing) {
  fn = reinterpret_cast<F>(dlsym(lib, name));
  if (fn == nullptr) missing = name;
  return fn != nullptr;
}

Api load() {
  Api a;
  // Debian's libtorch has already loaded it; elsewhere open it if installed.
  void* lib = dlopen("libdnnl.so.2", RTLD_NOW | RTLD_NOLOAD);
  if (lib == nullptr) lib = dlopen("libdnnl.so.2", RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    a.status = "libdnnl.so.2 not found";
    return a;
  }
  std::string missing;
  const bool ok = bind(lib, "dnnl_engine_create", a.engine_create, missing) &&
                  bind(lib, "dnnl_stream_create", a.stream_create, missing) &&
                  bind(lib, "dnnl_stream_wait", a.stream_wait, missing) &&
                  bind(lib, "dnnl_stream_destroy", a.stream_destroy, missing) &&
                  bind(lib, "dnnl_memory_desc_init_by_tag", a.md_init_by_tag, missing) &&
                  bind(lib, "dnnl_memory_desc_equal", a.md_equal, missing) &&
                  bind(lib, "dnnl_memory_desc_get_size", a.md_get_size, missing) &&
                  bind(lib, "dnnl_matmul_desc_init", a.matmul_desc_init, missing) &&
                  bind(lib, "dnnl_reorder_primitive_desc_create", a.reorder_pd_create, missing) &&
                  bind(lib, "dnnl_primitive_desc_create", a.pd_create, missing) &&
                  bind(lib, "dnnl_primitive_desc_query_md", a.pd_query_md, missing) &&
                  bind(lib, "dnnl_primitive_desc_destroy", a.pd_destroy, missing) &&
                  bind(lib, "dnnl_primitive_create", a.prim_create, missing) &&
                  bind(lib, "dnnl_primitive_execute", a.prim_execute, missing) &&
                  bind(lib, "dnnl_primitive_destroy", a.prim_destroy, missing) &&
                  bind(lib, "dnnl_memory_create", a.mem_create, missing) &&
                  bind(lib, "dnnl_memory_destroy", a.mem_destroy, missing) &&
                  bind(lib, "dnnl_primitive_attr_create", a.attr_create, missing) &&
                  bind(lib, "dnnl_primitive_attr_destroy", a.attr_destroy, missing) &&
                  bind(lib, "dnnl_primitive_attr_set_post_ops", a.attr_set_post_ops, missing) &&
                  bind(lib, "dnnl_post_ops_create", a.post_ops_create, missing) &&
                  bind(lib, "dnnl_post_ops_destroy", a.post_ops_destroy, missing) &&
                  bind(lib, "dnnl_post_ops_append_eltwise", a.post_ops_append_eltwise, missing) &&
                  bind(lib, "dnnl_version", a.version, missing);
  if (!ok) {
    a.status = "libdnnl.so.2 lacks " + missing;
    a.engine_create = nullptr;
    return a;
  }
  const dnnl_version_t* v = a.version();
  if (v->major != 2 || a.engine_create(&a.engine, dnnl_cpu, 0) != dnnl_success) {
    a.status = "libdnnl.so.2 is not a usable oneDNN 2.x";
    a.engine = nullptr;
    return a;
  }
  a.status = "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch) +
             " (libdnnl.so.2)";
  return a;
}

const Api& api() {
  static const Api a = load();
  return a;
}

void check(dnnl_status_t s, const char* what) {
  if (s != dnnl_success) throw std::runtime_error(std::string("oneDNN: ") + what + " failed (status " + std::to_string(s) + ")");
}

dnnl_data_type_t dnnl_type(at::ScalarType t) { return t == at::kBFloat16 ? dnnl_bf16 : dnnl_f32; }

dnnl_memory_desc_t plain_md(int64_t rows, int64_t cols, dnnl_data_type_t t, dnnl_format_tag_t tag) {
  dnnl_memory_desc_t md;
  const dnnl_dims_t dims = {rows, cols};
  check(api().md_init_by_tag(&md, 2, dims, t, tag), "memory_desc_init_by_tag");
  return md;
}

// One execution stream per thread (streams are not thread-safe; primitives are).
dnnl_stream_t thread_stream() {
  struct Holder {
    dnnl_stream_t stream = nullptr;
    ~Holder() {
      if (stream != nullptr) api().stream_destroy(stream);
    }
  };
  thread_local Holder h;
  if (h.stream == nullptr) check(api().stream_create(&h.stream, api().engine, dnnl_stream_default_flags), "stream_create");
  return h.stream;
}

// A matmul primitive for one (M, K, N, dtype, bias, weight layout, epilogue); primitives are
// reused across calls and threads.
struct Matmul {
  dnnl_primitive_desc_t pd = nullptr;
  dnnl_primitive_t prim = nullptr;
  dnnl_memory_desc_t weights_md{};
  ~Matmul() {
    if (prim != nullptr) api().prim_destroy(prim);
    if (pd != nullptr) api().pd_destroy(pd);
  }
};

using MatmulKey = std::tuple<int64_t, int64_t, int64_t, int, bool, bool, bool>;

std::shared_ptr<Matmul> make_matmul(int64_t m, int64_t k, int64_t n, dnnl_data_type_t t, bool bias, bool packed, bool gelu) {
  const Api& a = api();
  const dnnl_memory_desc_t src = plain_md(m, k, t, dnnl_ab);
  // The (N, K) row-major torch weight is a (K, N) matrix in `ba` order; `any` lets oneDNN pick
  // the blocked layout its kernel reads fastest (the same for every M, checked by the tests).
  const dnnl_memory_desc_t wei = plain_md(k, n, t, packed ? dnnl_format_tag_any : dnnl_ba);
  const dnnl_memory_desc_t bia = plain_md(1, n, t, dnnl_ab);
  const dnnl_memory_desc_t dst = plain_md(m, n, t, dnnl_ab);
  dnnl_matmul_desc_t desc;
  check(a.matmul_desc_init(&desc, &src, &wei, bias ? &bia : nullptr, &dst), "matmul_desc_init");
  dnnl_primitive_attr_t attr = nullptr;
  dnnl_post_ops_t ops = nullptr;
  check(a.attr_create(&attr), "primitive_attr_create");
  if (gelu) {
    check(a.post_ops_create(&ops), "post_ops_create");
    check(a.post_ops_append_eltwise(ops, 1.0f, dnnl_eltwise_gelu_tanh, 0.0f, 0.0f), "post_ops_append_eltwise");
    check(a.attr_set_post_ops(attr, ops), "primitive_attr_set_post_ops");
  }
  auto mm = std::make_shared<Matmul>();
  const dnnl_status_t s = a.pd_create(&mm->pd, &desc, attr, a.engine, nullptr);
  if (ops != nullptr) a.post_ops_destroy(ops);
  a.attr_destroy(attr);
  check(s, "matmul primitive_desc_create");
  mm->weights_md = *a.pd_query_md(mm->pd, dnnl_query_weights_md, 0);
  check(a.prim_create(&mm->prim, mm->pd), "matmul primitive_create");
  return mm;
}

// A weight's blocked copy, valid while the weight's storage lives with the same version.
struct PackedWeight {
  c10::weak_intrusive_ptr<c10::StorageImpl> storage{c10::intrusive_ptr<c10::StorageImpl>()};
  int64_t version = -1;
  at::ScalarType dtype = at::kFloat;
  int64_t k = 0, n = 0;
  dnnl_memory_desc_t md{};
  at::Tensor buffer;  // uint8 bytes in md's layout
};

struct Caches {
  std::mutex mutex;
  std::map<MatmulKey, std::shared_ptr<Matmul>> matmuls;
  std::map<const void*, std::shared_ptr<PackedWeight>> packed;
  int64_t inserts = 0;
};

Caches& caches() {
  static Caches c;
  return c;
}

// Drops copies whose weights were freed (called with the lock held).
void sweep(Caches& c) {
  for (auto it = c.packed.begin(); it != c.packed.end();) {
    it = it->second->storage.expired() ? c.packed.erase(it) : std::next(it);
  }
}

int64_t version_of(const at::Tensor& w) { return w.is_inference() ? 0 : static_cast<int64_t>(w._version()); }

bool current(const PackedWeight& p, const at::Tensor& w, const dnnl_memory_desc_t& md) {
  const auto alive = p.storage.lock();
  return alive.get() == w.storage().unsafeGetStorageImpl() && p.version == version_of(w) && p.dtype == w.scalar_type() &&
         p.k == w.size(1) && p.n == w.size(0) && api().md_equal(&p.md, &md) != 0;
}

std::shared_ptr<PackedWeight> pack(const at::Tensor& w, const dnnl_memory_desc_t& md) {
  const Api& a = api();
  auto p = std::make_shared<PackedWeight>();
  p->storage = c10::weak_intrusive_ptr<c10::StorageImpl>(
      c10::intrusive_ptr<c10::StorageImpl>::reclaim_copy(w.storage().unsafeGetStorageImpl()));
  p->version = version_of(w);
  p->dtype = w.scalar_type();
  p->k = w.size(1);
  p->n = w.size(0);
  p->md = md;
  p->buffer = at::empty({static_cast<int64_t>(a.md_get_size(&md))}, at::TensorOptions().dtype(at::kByte));
  const at::Tensor plain = w.contiguous();
  const dnnl_memory_desc_t src_md = plain_md(p->k, p->n, dnnl_type(w.scalar_type()), dnnl_ba);
  dnnl_primitive_desc_t rpd = nullptr;
  check(a.reorder_pd_create(&rpd, &src_md, a.engine, &md, a.engine, nullptr), "reorder primitive_desc_create");
  dnnl_primitive_t reorder = nullptr;
  dnnl_memory_t src = nullptr, dst = nullptr;
  dnnl_status_t s = a.prim_create(&reorder, rpd);
  a.pd_destroy(rpd);
  check(s, "reorder primitive_create");
  a.mem_create(&src, &src_md, a.engine, plain.data_ptr());
  a.mem_create(&dst, &md, a.engine, p->buffer.data_ptr());
  const dnnl_exec_arg_t args[] = {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}};
  s = a.prim_execute(reorder, thread_stream(), 2, args);
  if (s == dnnl_success) s = a.stream_wait(thread_stream());
  a.mem_destroy(src);
  a.mem_destroy(dst);
  a.prim_destroy(reorder);
  check(s, "weight reorder");
  return p;
}

}  // namespace

bool onednn_available() { return api().engine != nullptr; }

std::string onednn_status() { return api().status; }

at::Tensor onednn_linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, bool packed, bool gelu_tanh) {
  if (!onednn_available()) fail_argument("route", "oneDNN (" + onednn_status() + ")", x);
  const int64_t m = x.size(0), k = x.size(1), n = weight.size(0);
  const dnnl_data_type_t t = dnnl_type(x.scalar_type());
  const bool has_bias = bias.defined();
  Caches& c = caches();
  std::shared_ptr<Matmul> mm;
  std::shared_ptr<PackedWeight> pw;
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    const MatmulKey key{m, k, n, static_cast<int>(t), has_bias, packed, gelu_tanh};
    auto it = c.matmuls.find(key);
    if (it == c.matmuls.end()) {
      // Shapes are few (one per layer kind and sequence length); a bound keeps odd callers in check.
      if (c.matmuls.size() >= 512) c.matmuls.clear();
      it = c.matmuls.emplace(key, make_matmul(m, k, n, t, has_bias, packed, gelu_tanh)).first;
    }
    mm = it->second;
    if (packed) {
      auto& slot = c.packed[weight.data_ptr()];
      if (!slot || !current(*slot, weight, mm->weights_md)) {
        slot = pack(weight, mm->weights_md);
        if (++c.inserts % 64 == 0) sweep(c);
      }
      pw = slot;
    }
  }
  const Api& a = api();
  const at::Tensor w = packed ? at::Tensor() : weight.contiguous();
  at::Tensor out = pooled_empty({m, n}, x.options());
  const dnnl_memory_desc_t src_md = plain_md(m, k, t, dnnl_ab), dst_md = plain_md(m, n, t, dnnl_ab), bias_md = plain_md(1, n, t, dnnl_ab);
  dnnl_memory_t src = nullptr, wei = nullptr, bia = nullptr, dst = nullptr;
  a.mem_create(&src, &src_md, a.engine, x.data_ptr());
  a.mem_create(&wei, &mm->weights_md, a.engine, packed ? pw->buffer.data_ptr() : w.data_ptr());
  a.mem_create(&dst, &dst_md, a.engine, out.data_ptr());
  if (has_bias) a.mem_create(&bia, &bias_md, a.engine, bias.data_ptr());
  const dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DST, dst}, {DNNL_ARG_BIAS, bia}};
  // oneDNN's OpenMP regions use the calling thread's team size: size it as libtorch does.
  at::internal::lazy_init_num_threads();
  dnnl_status_t s = a.prim_execute(mm->prim, thread_stream(), has_bias ? 4 : 3, args);
  if (s == dnnl_success) s = a.stream_wait(thread_stream());
  for (dnnl_memory_t mem : {src, wei, bia, dst}) {
    if (mem != nullptr) a.mem_destroy(mem);
  }
  check(s, "matmul execute");
  return out;
}

void onednn_drop_freed_copies() {
  if (!onednn_available()) return;
  Caches& c = caches();
  std::lock_guard<std::mutex> lock(c.mutex);
  sweep(c);
}

int64_t onednn_packed_bytes() {
  if (!onednn_available()) return 0;
  Caches& c = caches();
  std::lock_guard<std::mutex> lock(c.mutex);
  sweep(c);
  int64_t bytes = 0;
  for (const auto& [ptr, p] : c.packed) bytes += p->buffer.numel();
  return bytes;
}

#endif

}  // namespace smolvla::ops
