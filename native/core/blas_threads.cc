#include "core/blas_threads.h"

#include <dlfcn.h>

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

}  // namespace

int set_blas_threads(int n) {
  if (setter() == nullptr || getter() == nullptr) return -1;
  const int previous = getter()();
  setter()(n);
  return previous;
}

SingleThreadedBlas::SingleThreadedBlas() : previous_(set_blas_threads(1)) {}

SingleThreadedBlas::~SingleThreadedBlas() {
  if (previous_ > 0) set_blas_threads(previous_);
}

}  // namespace smolvla
