// Runs native work off the JS thread and settles a Promise on the JS thread, so long native work
// never blocks the event loop. Work functions must not touch JS values.
//
// Tensor work goes to the process's compute thread (core/compute_thread.h: one libgomp team for
// all of it), one job at a time; the libuv pool thread that took the job waits for it. Work that
// waits on something else than the CPU (files, other ranks of a distributed run) runs on the pool
// thread itself, kept to one libtorch thread, so it neither queues behind a chunk nor opens a team.
#pragma once

#include <napi.h>

#include <functional>
#include <utility>

#include "core/compute_thread.h"
#include "napi/errors.h"

namespace smolvla::napi {

enum class Lane { compute, io };

template <typename Result>
class PromiseWorker : public Napi::AsyncWorker {
 public:
  using Work = std::function<Result()>;
  using Done = std::function<Napi::Value(Napi::Env, Result&)>;

  PromiseWorker(Napi::Env env, const char* name, Work work, Done done, Lane lane)
      : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)), done_(std::move(done)), lane_(lane) {}

  Napi::Promise promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override {
    bool failed = false;
    const std::function<void()> body = [&] {
      try {
        result_ = work_();
      } catch (...) {
        error_ = describe_current_exception();
        failed = true;
      }
    };
    if (lane_ == Lane::compute) {
      run_on_compute_thread(body);
    } else {
      keep_to_one_thread();
      body();
    }
    if (failed) SetError(error_.message);
  }

  void OnOK() override {
    Napi::Env env = Env();
    try {
      deferred_.Resolve(done_(env, result_));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    } catch (...) {
      deferred_.Reject(make_error(env, describe_current_exception()).Value());
    }
  }

  void OnError(const Napi::Error&) override { deferred_.Reject(make_error(Env(), error_).Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  Work work_;
  Done done_;
  Lane lane_;
  Result result_{};
  ErrorInfo error_;
};

// Queues `work` (run off the JS thread) and returns a Promise resolved with done(env, result).
template <typename Result>
Napi::Promise run_async(Napi::Env env, const char* name, std::function<Result()> work,
                        std::function<Napi::Value(Napi::Env, Result&)> done, Lane lane = Lane::compute) {
  auto* worker = new PromiseWorker<Result>(env, name, std::move(work), std::move(done), lane);
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

// A `done` for work whose Promise resolves with undefined.
template <typename Result>
Napi::Value resolve_undefined(Napi::Env env, Result&) {
  return env.Undefined();
}

}  // namespace smolvla::napi
