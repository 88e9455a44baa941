#include "core/blas_threads.h"

#include <dlfcn.h>

#include <mutex>

namespace smolvla {
namespace {

using SetThreads = void (*)(int);
using GetThreads = int (*)();

SetThreads setter() {
  static const auto fn = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  return fn;
}

GetThreads getter() {
  static const auto fn = reinterpret_cast<GetThreads>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  return fn;
}

// The pool size is process-global, so single-threaded regions are counted rather than each saving
// and restoring it: with two regions overlapping (two models loading on two pool threads), a
// per-region save/restore lets the second region save the first one's "1" and restore it last,
// leaving BLAS single-threaded for good. The first region in saves the size, the last one out
// restores it, and a size requested while regions are open is applied when the last one closes.
struct State {
  std::mutex mutex;
  int regions = 0;
  int saved = -1;
};

State& state() {
  static State s;
  return s;
}

}  // namespace

int set_blas_threads(int n) {
  if (setter() == nullptr || getter() == nullptr) return -1;
  State& s = state();
  const std::lock_guard<std::mutex> lock(s.mutex);
  if (s.regions > 0) {
    const int previous = s.saved;
    s.saved = n;
    return previous;
  }
  const int previous = getter()();
  setter()(n);
  return previous;
}

SingleThreadedBlas::SingleThreadedBlas() {
  if (setter() == nullptr || getter() == nullptr) return;
  State& s = state();
  const std::lock_guard<std::mutex> lock(s.mutex);
  if (s.regions++ == 0) {
    s.saved = getter()();
    setter()(1);
  }
}

SingleThreadedBlas::~SingleThreadedBlas() {
  if (setter() == nullptr || getter() == nullptr) return;
  State& s = state();
  const std::lock_guard<std::mutex> lock(s.mutex);
  if (--s.regions == 0 && s.saved > 0) setter()(s.saved);
}

}  // namespace smolvla
