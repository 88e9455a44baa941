// One thread of the process runs the addon's tensor work; every other thread keeps libtorch to one
// thread of its own.
//
// Why: libtorch's CPU kernels, oneDNN's GEMMs and our task helpers all run on libgomp, which gives
// every thread that opens a parallel region its own team of helper threads. Jobs queued from
// Node land on whichever of libuv's four pool threads is free, so after a few calls the process
// holds several teams; once libgomp manages more threads than there are CPUs, a helper waiting
// for the next region spins 100 iterations instead of 300 000 and then sleeps on a futex, and the
// decode loop's ~2 000 regions a chunk each paid a sleep and a wake (measured on 2 cores: 2 700
// context switches per chunk's denoising; 46 for 20 chunks with a single team). With one compute
// thread there is one team, warm between regions.
#pragma once

#include <functional>

namespace smolvla {

// Runs fn on the compute thread and waits for it; jobs run one at a time, in the order they came.
// An exception fn throws is rethrown here. Called on the compute thread itself, runs fn inline.
void run_on_compute_thread(const std::function<void()>& fn);

// Called once, on the JS thread, when the addon loads: the compute thread takes libtorch's thread
// count there (OMP_NUM_THREADS, else the CPU count) and the JS thread itself keeps to one thread.
void init_compute_threading();

// The intra-op thread count of work on the compute thread (applied before its next job).
void set_compute_threads(int threads);
int compute_threads();

// Keeps libtorch and libgomp on the calling thread to one thread, so that occasional tensor work
// there (a file's finiteness check, a small synchronous op) opens no team of its own.
void keep_to_one_thread();

}  // namespace smolvla
