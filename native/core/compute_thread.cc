#include "core/compute_thread.h"

#include <ATen/Parallel.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

#include <dlfcn.h>

namespace smolvla {
namespace {

std::atomic<int> wanted_threads{1};  // set by init_compute_threading

class ComputeThread {
 public:
  void run(const std::function<void()>& fn) {
    Job job{&fn};
    {
      std::unique_lock<std::mutex> lock(mutex_);
      if (started_ && std::this_thread::get_id() == id_) {
        lock.unlock();
        fn();  // already on the compute thread (a job that runs another)
        return;
      }
      start_locked();
      queue_.push_back(&job);
    }
    wake_.notify_one();
    {
      std::unique_lock<std::mutex> lock(mutex_);
      done_.wait(lock, [&] { return job.finished; });
    }
    if (job.error) std::rethrow_exception(job.error);
  }

 private:
  struct Job {
    const std::function<void()>* fn;
    std::exception_ptr error;
    bool finished = false;
  };

  void start_locked() {
    if (started_) return;
    std::thread t([this] { loop(); });
    id_ = t.get_id();
    t.detach();  // lives for the process; never joined (static destructors run while it sleeps)
    started_ = true;
  }

  void loop() {
    int applied = 0;
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return !queue_.empty(); });
      Job* job = queue_.front();
      queue_.pop_front();
      lock.unlock();
      const int wanted = wanted_threads.load();
      if (wanted != applied) {
        at::set_num_threads(wanted);
        applied = wanted;
      }
      try {
        (*job->fn)();
      } catch (...) {
        job->error = std::current_exception();
      }
      lock.lock();
      job->finished = true;
      done_.notify_all();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::deque<Job*> queue_;
  bool started_ = false;
  std::thread::id id_;
};

ComputeThread& compute() {
  static ComputeThread* c = new ComputeThread();  // never destroyed, like its thread
  return *c;
}

// libgomp's per-thread setter (omp_set_num_threads sets the calling thread's ICV only), from the
// OpenMP runtime libtorch loaded; null where there is none by that name (a pip libtorch bundles its
// own under another name: its threads then stay as they are).
using OmpSetNumThreads = void (*)(int);
OmpSetNumThreads omp_setter() {
  static const OmpSetNumThreads fn = []() -> OmpSetNumThreads {
    void* lib = dlopen("libgomp.so.1", RTLD_NOW | RTLD_NOLOAD);
    return lib == nullptr ? nullptr : reinterpret_cast<OmpSetNumThreads>(dlsym(lib, "omp_set_num_threads"));
  }();
  return fn;
}

}  // namespace

void run_on_compute_thread(const std::function<void()>& fn) { compute().run(fn); }

void init_compute_threading() {
  wanted_threads.store(at::get_num_threads());
  keep_to_one_thread();
}

void set_compute_threads(int threads) { wanted_threads.store(threads); }

int compute_threads() { return wanted_threads.load(); }

void keep_to_one_thread() {
  // libtorch reads its thread count into a thread lazily, on the first parallel call there; take
  // that first so it cannot overwrite the setting below later.
  (void)at::get_num_threads();
  if (OmpSetNumThreads set = omp_setter()) set(1);
}

}  // namespace smolvla
