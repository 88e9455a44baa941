#include "train/distributed.h"

#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/version.h>

#ifdef USE_C10D_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>
#include <sstream>

namespace smolvla::train {

namespace {

// libtorch 2.x split the process group into a ProcessGroup front and per-device Backends; Gloo and
// NCCL are Backends there, ProcessGroups in 1.x. Both expose the same allreduce/broadcast calls.
#if TORCH_VERSION_MAJOR >= 2
using Group = c10d::Backend;
#else
using Group = c10d::ProcessGroup;
#endif

std::string seconds(std::chrono::milliseconds t) {
  std::ostringstream s;
  s << static_cast<double>(t.count()) / 1000.0 << " s";
  return s.str();
}

bool contains(const std::string& s, const char* what) { return s.find(what) != std::string::npos; }

const char* error_text(const std::exception& e) {
  if (const auto* c = dynamic_cast<const c10::Error*>(&e)) return c->what_without_backtrace();
  return e.what();
}

bool is_loopback(const std::string& addr) {
  return addr == "localhost" || addr == "::1" || addr.rfind("127.", 0) == 0;
}

}  // namespace

struct Communicator::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<Group> group;
};

Communicator::Communicator(DistributedOptions options, std::unique_ptr<Impl> impl, std::string backend)
    : options_(std::move(options)), impl_(std::move(impl)), backend_(std::move(backend)) {}

Communicator::~Communicator() = default;

std::shared_ptr<Communicator> Communicator::connect(const DistributedOptions& o) {
  if (o.world_size < 1) throw DistributedError("WORLD_SIZE: expected a positive integer, got " + std::to_string(o.world_size));
  if (o.rank < 0 || o.rank >= o.world_size) {
    throw DistributedError("RANK: expected an integer in [0, " + std::to_string(o.world_size) + "), got " + std::to_string(o.rank));
  }
  if (o.master_port < 1 || o.master_port > 65535) {
    throw DistributedError("MASTER_PORT: expected a TCP port in [1, 65535], got " + std::to_string(o.master_port));
  }
  if (o.master_addr.empty()) throw DistributedError("MASTER_ADDR: expected the host name or address of rank 0, got an empty string");
  const std::string where = o.master_addr + ":" + std::to_string(o.master_port);
  auto impl = std::make_unique<Impl>();

  c10d::TCPStoreOptions so;
  so.port = static_cast<std::uint16_t>(o.master_port);
  so.isServer = o.rank == 0;
  so.numWorkers = static_cast<std::size_t>(o.world_size);
  so.waitWorkers = true;
  so.timeout = o.timeout;
  try {
    impl->store = c10::make_intrusive<c10d::TCPStore>(o.master_addr, so);
  } catch (const std::exception& e) {
    const std::string msg = error_text(e);
    std::string hint;
    if (o.rank == 0 && (contains(msg, "in use") || contains(msg, "EADDRINUSE"))) {
      hint = "MASTER_PORT " + std::to_string(o.master_port) + " is already in use on this machine: choose a free port";
    } else if (o.rank == 0) {
      hint = "rank 0 hosts the rendezvous on port " + std::to_string(o.master_port) + " and waited up to " + seconds(o.timeout) +
             " for all " + std::to_string(o.world_size) + " workers to join";
    } else {
      hint = "rank " + std::to_string(o.rank) + " could not reach rank 0's rendezvous at " + where + " within " + seconds(o.timeout) +
             " (check MASTER_ADDR and MASTER_PORT, and that rank 0 is running)";
    }
    throw DistributedError("distributed rendezvous failed: " + hint + ": " + msg);
  }

  std::string backend;
  try {
    if (o.device == "cpu") {
#ifdef USE_C10D_GLOO
      auto go = c10d::ProcessGroupGloo::Options::create(o.timeout);
      // Gloo binds one address per process: loopback for single-machine runs, otherwise the
      // interface named by GLOO_SOCKET_IFNAME or the one this host name resolves to (as torch does).
      const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
      if (ifname && *ifname) {
        go->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      } else if (is_loopback(o.master_addr)) {
        go->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      } else {
        go->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      }
      impl->group = c10::make_intrusive<c10d::ProcessGroupGloo>(impl->store, o.rank, o.world_size, go);
      backend = "gloo";
#else
      throw DistributedError("this libtorch was built without Gloo (USE_C10D_GLOO): CPU data-parallel training is unavailable");
#endif
    } else if (o.device == "cuda") {
#ifdef USE_C10D_NCCL
      auto no = c10d::ProcessGroupNCCL::Options::create();
      no->timeout = o.timeout;
      impl->group = c10::make_intrusive<c10d::ProcessGroupNCCL>(impl->store, o.rank, o.world_size, no);
      backend = "nccl";
#else
      throw DistributedError("this libtorch was built without NCCL (USE_C10D_NCCL): CUDA data-parallel training is unavailable");
#endif
    } else {
      throw DistributedError("device: expected 'cpu' (Gloo) or 'cuda' (NCCL), got '" + o.device + "'");
    }
  } catch (const DistributedError&) {
    throw;
  } catch (const std::exception& e) {
    throw DistributedError("rank " + std::to_string(o.rank) + ": setting up the process group through " + where +
                           " failed within " + seconds(o.timeout) + ": " + error_text(e));
  }
  return std::shared_ptr<Communicator>(new Communicator(o, std::move(impl), backend));
}

void Communicator::fail(const char* what, const std::exception& e) const {
  const std::string msg = error_text(e);
  const bool timed_out = contains(msg, "imed out") || contains(msg, "imeout");
  throw DistributedError("rank " + std::to_string(options_.rank) + " of " + std::to_string(options_.world_size) + ": " + what +
                         (timed_out ? " timed out after " + seconds(options_.timeout) + " (a peer stopped or is stuck)"
                                    : " failed: another worker has probably died") +
                         ": " + msg);
}

namespace {

class PendingWork : public Communicator::Pending {
 public:
  PendingWork(c10::intrusive_ptr<c10d::Work> work, std::function<void(const std::exception&)> fail)
      : work_(std::move(work)), fail_(std::move(fail)) {}
  void wait() override {
    try {
      work_->wait();
    } catch (const std::exception& e) {
      fail_(e);
    }
  }

 private:
  c10::intrusive_ptr<c10d::Work> work_;
  std::function<void(const std::exception&)> fail_;
};

}  // namespace

std::unique_ptr<Communicator::Pending> Communicator::allreduce_sum_async(at::Tensor& flat, const char* what) {
  std::vector<at::Tensor> v{flat};
  try {
    auto work = impl_->group->allreduce(v, c10d::AllreduceOptions{});
    return std::make_unique<PendingWork>(std::move(work), [this, what](const std::exception& e) { fail(what, e); });
  } catch (const std::exception& e) {
    fail(what, e);
  }
}

void Communicator::allreduce_sum(at::Tensor& flat, const char* what) { allreduce_sum_async(flat, what)->wait(); }

void Communicator::allreduce_min_max(at::Tensor& lo, at::Tensor& hi, const char* what) {
  try {
    std::vector<at::Tensor> a{lo}, b{hi};
    c10d::AllreduceOptions min_op, max_op;
    min_op.reduceOp = c10d::ReduceOp::MIN;
    max_op.reduceOp = c10d::ReduceOp::MAX;
    impl_->group->allreduce(a, min_op)->wait();
    impl_->group->allreduce(b, max_op)->wait();
  } catch (const std::exception& e) {
    fail(what, e);
  }
}

void Communicator::broadcast(const std::vector<at::Tensor>& tensors, int root, const char* what) {
  at::NoGradGuard no_grad;
  // One flat buffer per dtype: Gloo broadcasts a single tensor per call.
  std::map<at::ScalarType, std::vector<at::Tensor>> by_type;
  for (const auto& t : tensors) by_type[t.scalar_type()].push_back(t);
  for (auto& [type, group] : by_type) {
    std::vector<at::Tensor> flats;
    for (const auto& t : group) flats.push_back(t.detach().reshape({-1}));
    std::vector<at::Tensor> buffer{at::cat(flats)};
    c10d::BroadcastOptions bo;
    bo.rootRank = root;
    try {
      impl_->group->broadcast(buffer, bo)->wait();
    } catch (const std::exception& e) {
      fail(what, e);
    }
    int64_t offset = 0;
    for (auto& t : group) {
      t.detach().copy_(buffer[0].narrow(0, offset, t.numel()).view(t.sizes()));
      offset += t.numel();
    }
  }
}

// ---- gradient buckets ------------------------------------------------------------------------

struct GradientSync::State {
  struct Bucket {
    std::vector<size_t> params;
    at::Tensor flat;
    size_t pending = 0;
    std::unique_ptr<Communicator::Pending> work;
  };
  std::shared_ptr<Communicator> comm;
  std::vector<at::Tensor> params;
  std::vector<at::Tensor> views;      // per parameter: its slot in its bucket, shaped like it
  std::vector<size_t> bucket_of;      // per parameter
  std::vector<bool> got;              // per parameter: a gradient arrived this pass
  std::vector<Bucket> buckets;
  std::vector<unsigned> hook_ids;
  size_t next_launch = 0;
  bool armed = false;
  std::mutex mutex;

  // Buckets start strictly in index order so that every rank issues the same collective sequence.
  void launch_ready() {
    while (next_launch < buckets.size() && buckets[next_launch].pending == 0) {
      Bucket& b = buckets[next_launch++];
      b.work = comm->allreduce_sum_async(b.flat, "the gradient all-reduce");
    }
  }

  void on_grad(size_t i, const at::Tensor& grad) {
    std::lock_guard<std::mutex> lock(mutex);
    if (!armed || got[i]) return;
    got[i] = true;
    views[i].copy_(grad);
    if (--buckets[bucket_of[i]].pending == 0) launch_ready();
  }
};

GradientSync::GradientSync(std::shared_ptr<Communicator> comm, std::vector<at::Tensor> params, int64_t bucket_bytes)
    : comm_(std::move(comm)), state_(std::make_shared<State>()) {
  auto& s = *state_;
  s.comm = comm_;
  s.params = std::move(params);
  const size_t n = s.params.size();
  s.views.resize(n);
  s.bucket_of.resize(n);
  s.got.assign(n, false);
  // Reverse order: the last layers' gradients come first in backward, so their bucket fills first.
  std::vector<std::vector<size_t>> groups;
  int64_t bytes = 0;
  for (size_t k = n; k-- > 0;) {
    const at::Tensor& p = s.params[k];
    const int64_t pb = p.numel() * static_cast<int64_t>(p.element_size());
    const bool fits = !groups.empty() && bytes + pb <= bucket_bytes &&
                      s.params[groups.back().front()].scalar_type() == p.scalar_type() &&
                      s.params[groups.back().front()].device() == p.device();
    if (!fits) {
      groups.emplace_back();
      bytes = 0;
    }
    groups.back().push_back(k);
    bytes += pb;
  }
  for (auto& g : groups) {
    State::Bucket b;
    int64_t total = 0;
    for (size_t k : g) total += s.params[k].numel();
    b.flat = at::zeros({total}, s.params[g.front()].options().requires_grad(false));
    int64_t offset = 0;
    for (size_t k : g) {
      s.views[k] = b.flat.narrow(0, offset, s.params[k].numel()).view(s.params[k].sizes());
      s.bucket_of[k] = s.buckets.size();
      offset += s.params[k].numel();
    }
    b.params = std::move(g);
    s.buckets.push_back(std::move(b));
  }
  // A hook on a leaf runs once per backward with the parameter's whole gradient, before it is
  // accumulated into .grad.
  std::weak_ptr<State> weak = state_;
  for (size_t i = 0; i < n; ++i) {
    s.hook_ids.push_back(s.params[i].register_hook([weak, i](const at::Tensor& grad) {
      if (auto st = weak.lock()) st->on_grad(i, grad);
    }));
  }
}

GradientSync::~GradientSync() {
  for (size_t i = 0; i < state_->params.size(); ++i) state_->params[i].remove_hook(state_->hook_ids[i]);
}

bool GradientSync::all_finite(const at::Tensor& loss) {
  at::Tensor bad = at::full({1}, std::isfinite(loss.item<double>()) ? 0.0f : 1.0f, loss.options().dtype(at::kFloat));
  comm_->allreduce_sum(bad, "the loss check");
  return bad.item<float>() == 0.0f;
}

size_t GradientSync::bucket_count() const { return state_->buckets.size(); }

void GradientSync::begin() {
  auto& s = *state_;
  std::lock_guard<std::mutex> lock(s.mutex);
  for (auto& b : s.buckets) {
    b.pending = b.params.size();
    b.work.reset();
  }
  s.got.assign(s.params.size(), false);
  s.next_launch = 0;
  s.armed = true;
}

double GradientSync::finish() {
  at::NoGradGuard no_grad;
  auto& s = *state_;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    s.armed = false;
    // Parameters backward did not reach contribute zeros (the graph, hence the set, is the same on
    // every rank), and their buckets start now, still in order.
    for (size_t i = 0; i < s.params.size(); ++i) {
      if (s.got[i]) continue;
      s.views[i].zero_();
      --s.buckets[s.bucket_of[i]].pending;
    }
    s.launch_ready();
  }
  const auto start = std::chrono::steady_clock::now();
  for (auto& b : s.buckets) b.work->wait();
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double n = static_cast<double>(comm_->world_size());
  for (auto& b : s.buckets) b.flat.div_(n);
  for (size_t i = 0; i < s.params.size(); ++i) {
    if (!s.got[i]) continue;  // no gradient here means none anywhere: the optimiser skips it as before
    at::Tensor& g = s.params[i].mutable_grad();
    if (g.defined() && g.sizes() == s.views[i].sizes()) {
      g.copy_(s.views[i]);
    } else {
      g = s.views[i].clone();
    }
  }
  return waited;
}

// ---- per-step random draws ---------------------------------------------------------------------

at::Tensor RankSlice::rows(const at::Tensor& global) const {
  const int64_t local = global.size(0) / world_size;
  return global.narrow(0, static_cast<int64_t>(rank) * local, local).contiguous();
}

std::pair<at::Tensor, at::Tensor> main_noise_and_time(const RankSlice& slice, const at::Tensor& local_actions) {
  // The same calls, in the same order and with the same shapes, as forward_main's own sampling.
  std::vector<int64_t> shape = local_actions.sizes().vec();
  const int64_t b = shape[0] * slice.world_size;
  shape[0] = b;
  const at::Tensor noise = at::randn(shape, local_actions.options());
  const auto opts = local_actions.options().dtype(at::kFloat);
  const at::Tensor gx = at::_standard_gamma(at::full({b}, 1.5, opts));
  const at::Tensor gy = at::_standard_gamma(at::full({b}, 1.0, opts));
  const at::Tensor time = gx / (gx + gy) * 0.999 + 0.001;
  return {slice.rows(noise), slice.rows(time)};
}

at::Tensor delta_cls_noise(const RankSlice& slice, int64_t local_batch, int64_t chunk, int64_t width, int64_t action_dim,
                           double scale) {
  at::Tensor noise = at::zeros({local_batch * slice.world_size, chunk, width}, at::TensorOptions().dtype(at::kFloat));
  noise.narrow(2, 0, action_dim).normal_(0.0, scale);
  return slice.rows(noise);
}

int64_t hash_tensors(const std::vector<at::Tensor>& tensors) {
  uint64_t h = 1469598103934665603ULL;
  for (const auto& t : tensors) {
    const at::Tensor c = t.detach().to(at::kCPU).contiguous();
    const auto* p = static_cast<const unsigned char*>(c.data_ptr());
    const size_t bytes = static_cast<size_t>(c.numel()) * c.element_size();
    for (size_t i = 0; i < bytes; ++i) {
      h ^= p[i];
      h *= 1099511628211ULL;
    }
  }
  return static_cast<int64_t>(h);
}

}  // namespace smolvla::train
