// Runs independent tasks on the calling thread plus helper threads (a pool that sleeps between
// calls), handing tasks out one at a time.
//
// Why not at::parallel_for: with libtorch's OpenMP backend its parallel region is an inline template
// compiled into *this* addon, which is built without -fopenmp (so as not to pull a second OpenMP
// runtime in beside a pip libtorch's bundled one); there it runs every task on the caller. Measured
// on 2 cores: the vision attention's 48 tasks per layer all ran on one thread.
//
// Tasks must not call ATen ops that parallelise themselves (they would oversubscribe the cores):
// they run on plain threads, where libtorch does not know it is inside a parallel region.
#pragma once

#include <cstdint>
#include <functional>

namespace smolvla {

// fn(task) for task in [0, tasks) on up to `threads` threads (the caller included). The first
// exception a task throws stops the handing out and is rethrown here after all threads finish.
void run_tasks(int64_t tasks, int threads, const std::function<void(int64_t)>& fn);

}  // namespace smolvla
