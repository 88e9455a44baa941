// Module entry: one registration call per binding file.
#include <napi.h>

#include <cstdlib>
#include <mutex>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "core/compute_thread.h"
#include "napi/bindings.h"
#include "napi/distributed_wrap.h"
#include "napi/model_wrap.h"
#include "napi/tensor_wrap.h"

namespace {

// glibc raises its mmap threshold each time a large mmapped block is freed, after which tensors of
// a few MB come from the heap and freed ones stay in the process (RSS grew by 1.7 GB over 1 500
// create/read/free cycles of 4 MB tensors). A fixed threshold keeps tensors of 4 MiB and more on
// mmap, returned to the system when freed. MALLOC_MMAP_THRESHOLD_ in the environment takes precedence.
void pin_mmap_threshold() {
#if defined(__GLIBC__)
  if (std::getenv("MALLOC_MMAP_THRESHOLD_") != nullptr) return;
  mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024);
  // A fixed mmap threshold also freezes the trim threshold at 128 KB, so every free at the top of the
  // heap would hand pages back and the next step would fault them in again (a tiny model's chunk went
  // from 80 ms to 650 ms). Keep up to 64 MiB of freed heap for reuse.
  if (std::getenv("MALLOC_TRIM_THRESHOLD_") == nullptr) mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
#endif
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  static std::once_flag once;  // the first load, on the main JS thread (workers load it again)
  std::call_once(once, [] {
    pin_mmap_threshold();
    smolvla::init_compute_threading();
  });
  smolvla::napi::TensorWrap::Init(env, exports);
  smolvla::napi::register_runtime(env, exports);
  smolvla::napi::register_ops(env, exports);
  smolvla::napi::register_preprocess(env, exports);
  smolvla::napi::register_io(env, exports);
  smolvla::napi::register_model(env, exports);
  smolvla::napi::register_trainer(env, exports);
  smolvla::napi::register_rtc(env, exports);
  smolvla::napi::register_distributed(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(smolvla_node, Init)
