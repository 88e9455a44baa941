// Control of a pthread OpenBLAS's own thread pool (Debian's fast OpenBLAS), which libtorch 1.x
// does not size: found at run time, a no-op with any other BLAS.
#pragma once

namespace smolvla {

// Sets the BLAS pool size when the BLAS is OpenBLAS; returns the previous size (or -1). While
// single-threaded regions are open the new size takes effect when the last one closes. Thread-safe.
int set_blas_threads(int n);

// Runs a region with a single-threaded BLAS: for GEMMs issued from inside at::parallel_for tasks,
// where a second level of BLAS threads would only oversubscribe the cores. Regions may overlap on
// any threads: the pool size in force before the first one is restored when the last one ends.
class SingleThreadedBlas {
 public:
  SingleThreadedBlas();
  ~SingleThreadedBlas();
  SingleThreadedBlas(const SingleThreadedBlas&) = delete;
  SingleThreadedBlas& operator=(const SingleThreadedBlas&) = delete;
};

}  // namespace smolvla
