#include "core/task_threads.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include <dlfcn.h>

namespace smolvla {
namespace {

// libgomp's entry for a parallel region (what `#pragma omp parallel` compiles to), taken from the
// OpenMP runtime libtorch already loaded: tasks then run on the same team that runs oneDNN's GEMMs
// and libtorch's kernels, whose worker is still spinning from the last GEMM when the next attention
// call comes (a sleeping helper of our own needs a futex wake, and a third busy thread on two cores
// slows whichever of the three the scheduler preempts). Null where no libgomp is loaded (a pip
// libtorch bundles its own under another name) or SMOLVLA_TASK_THREADS=own: the pool below.
using GompParallel = void (*)(void (*)(void*), void*, unsigned, unsigned);

GompParallel gomp_parallel() {
  static const GompParallel fn = []() -> GompParallel {
    const char* e = std::getenv("SMOLVLA_TASK_THREADS");
    if (e != nullptr && std::strcmp(e, "own") == 0) return nullptr;
    void* lib = dlopen("libgomp.so.1", RTLD_NOW | RTLD_NOLOAD);
    return lib == nullptr ? nullptr : reinterpret_cast<GompParallel>(dlsym(lib, "GOMP_parallel"));
  }();
  return fn;
}

// Helper threads that live for the process and sleep between jobs: the decode loop runs 160 small
// attention calls a chunk, and starting a thread per call (~50 µs, with the kernel copying the
// process's thread state) cost more than the second core saved. One job at a time; a caller that
// finds the pool busy (another model on another thread) starts its own threads as before.
class HelperPool {
 public:
  // Runs work() on the caller and on up to `helpers` pool threads; returns when all have finished.
  // False (nothing run) when the pool is busy.
  bool run(int helpers, const std::function<void()>& work) {
    if (busy_.exchange(true)) return false;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      while (static_cast<int>(threads_.size()) < helpers) {
        try {
          threads_.emplace_back([this] { loop(); });
          threads_.back().detach();  // sleeps in wait() at exit; never joined
        } catch (const std::system_error&) {
          helpers = static_cast<int>(threads_.size());
          break;
        }
      }
      job_ = &work;
      open_slots_ = helpers;
      ++generation_;
    }
    wake_.notify_all();
    work();
    {
      std::unique_lock<std::mutex> lock(mutex_);
      open_slots_ = 0;  // slots no helper took yet: the work is done, they need not wake for it
      finished_.wait(lock, [this] { return running_ == 0; });
      job_ = nullptr;
    }
    busy_ = false;
    return true;
  }

 private:
  void loop() {
    uint64_t seen = 0;
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return generation_ != seen && open_slots_ > 0; });
      seen = generation_;
      --open_slots_;
      ++running_;
      const std::function<void()>* job = job_;
      lock.unlock();
      (*job)();
      lock.lock();
      if (--running_ == 0) finished_.notify_one();
    }
  }

  std::atomic<bool> busy_{false};
  std::mutex mutex_;
  std::condition_variable wake_, finished_;
  std::vector<std::thread> threads_;
  const std::function<void()>* job_ = nullptr;
  uint64_t generation_ = 0;
  int open_slots_ = 0;
  int running_ = 0;
};

HelperPool& pool() {
  static HelperPool* p = new HelperPool();  // never destroyed: its threads outlive static destructors
  return *p;
}

}  // namespace

void run_tasks(int64_t tasks, int threads, const std::function<void(int64_t)>& fn) {
  if (tasks <= 0) return;
  const int n = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, tasks)));
  std::atomic<int64_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  const std::function<void()> work = [&] {
    for (int64_t task = next++; task < tasks; task = next++) {
      try {
        fn(task);
      } catch (...) {
        const std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
        next = tasks;  // hand out nothing more
      }
    }
  };
  if (n == 1) {
    work();
  } else if (GompParallel parallel = gomp_parallel()) {
    // Every team thread runs work(), which takes tasks from the counter; work() catches everything,
    // so no exception crosses the runtime's frames.
    parallel([](void* w) { (*static_cast<const std::function<void()>*>(w))(); }, const_cast<std::function<void()>*>(&work),
             static_cast<unsigned>(n), 0);
  } else if (!pool().run(n - 1, work)) {
    std::vector<std::thread> helpers;
    helpers.reserve(static_cast<size_t>(n - 1));
    for (int i = 1; i < n; ++i) {
      try {
        helpers.emplace_back(work);
      } catch (const std::system_error&) {
        break;  // no thread to be had: the threads already started (and the caller) do the rest
      }
    }
    work();
    for (auto& t : helpers) t.join();
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace smolvla
