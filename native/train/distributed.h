// Data-parallel training on libtorch's c10d: a TCPStore rendezvous hosted by rank 0, a process group
// (ProcessGroupGloo on CPU, ProcessGroupNCCL on CUDA where the libtorch was built with it), and a
// gradient synchroniser that all-reduces flattened gradient buckets as backward produces them.
// The collectives are c10d's; this file only decides what is reduced, when, and in which order.
//
// The c10d headers (and gloo's) stay inside distributed.cc: this header is all the rest of the
// addon sees.
#pragma once

#include <ATen/core/Tensor.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace smolvla::train {

// A rendezvous or collective that failed: a peer died, timed out, or could not be reached. The
// message says which rank, what it was doing, and the c10d error underneath.
struct DistributedError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct DistributedOptions {
  int rank = 0;
  int world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  // Bounds the rendezvous and every collective: a dead or stuck peer turns into an error after it.
  std::chrono::milliseconds timeout{std::chrono::seconds(300)};
  // "cpu" -> Gloo, "cuda" -> NCCL (an error where the libtorch has no NCCL).
  std::string device = "cpu";
};

// One process's membership of the group; every collective must be issued by all ranks in the same
// order (c10d matches them by sequence).
class Communicator {
 public:
  // Rendezvous (rank 0 listens on master_port) and process-group setup; blocks up to the timeout.
  static std::shared_ptr<Communicator> connect(const DistributedOptions& options);
  ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const { return options_.rank; }
  int world_size() const { return options_.world_size; }
  const std::string& backend() const { return backend_; }

  // A started all-reduce (sum, in place); wait() rethrows a failure as DistributedError.
  class Pending {
   public:
    virtual ~Pending() = default;
    virtual void wait() = 0;
  };
  std::unique_ptr<Pending> allreduce_sum_async(at::Tensor& flat, const char* what);
  void allreduce_sum(at::Tensor& flat, const char* what);
  void allreduce_min_max(at::Tensor& min_in_place, at::Tensor& max_in_place, const char* what);
  // Rank `root`'s values into every rank's tensors (grouped per dtype into flat buffers).
  void broadcast(const std::vector<at::Tensor>& tensors, int root, const char* what);

 private:
  struct Impl;
  Communicator(DistributedOptions options, std::unique_ptr<Impl> impl, std::string backend);
  [[noreturn]] void fail(const char* what, const std::exception& e) const;

  DistributedOptions options_;
  std::unique_ptr<Impl> impl_;
  std::string backend_;
};

// Averages the gradients of a fixed parameter list over the group, DDP style: parameters are
// packed, in reverse order (roughly the order backward produces their gradients), into flat
// buckets of at most `bucket_bytes`; a hook on each parameter copies its gradient into its bucket,
// and a full bucket's all-reduce starts at once (buckets start strictly in order on every rank)
// while backward carries on. finish() starts what is left (parameters that got no gradient count
// as zeros), waits, divides by the world size and writes the averages into the .grad fields.
class GradientSync {
 public:
  GradientSync(std::shared_ptr<Communicator> comm, std::vector<at::Tensor> params, int64_t bucket_bytes);
  ~GradientSync();

  // Arms the hooks for one backward pass.
  void begin();
  // Completes the reduction; returns the seconds spent waiting for communication here.
  double finish();

  // True when the loss is finite on every rank: a rank that skipped backward alone would leave the
  // others waiting in the gradient all-reduce, so all skip together.
  bool all_finite(const at::Tensor& loss);

  size_t bucket_count() const;
  const std::shared_ptr<Communicator>& communicator() const { return comm_; }

 private:
  struct State;
  std::shared_ptr<Communicator> comm_;
  std::shared_ptr<State> state_;
};

// The per-step random draws of a data-parallel step: each rank draws the whole global batch's
// values from the shared per-step seed and keeps its own rows, so N ranks of batch b see exactly
// what one process of batch N*b sees.
struct RankSlice {
  int rank = 0;
  int world_size = 1;
  at::Tensor rows(const at::Tensor& global) const;
};

// Flow-matching noise (B, C, A) and time (B,) drawn as forward_main draws them, for the global batch.
std::pair<at::Tensor, at::Tensor> main_noise_and_time(const RankSlice& slice, const at::Tensor& local_actions);
// The delta objective's CLS noise, N(0, scale^2) on the first `action_dim` columns, for the global batch.
at::Tensor delta_cls_noise(const RankSlice& slice, int64_t local_batch, int64_t chunk, int64_t width,
                           int64_t action_dim, double scale);

// 64-bit FNV-1a over the tensors' bytes (CPU copies): equal on every rank iff the values are.
int64_t hash_tensors(const std::vector<at::Tensor>& tensors);

}  // namespace smolvla::train
