// Runs tensor work on the libuv thread pool and settles a Promise on the JS thread, so long native
// work never blocks the event loop. Work functions must not touch JS values.
#pragma once

#include <napi.h>

#include <functional>
#include <utility>

#include "napi/errors.h"

namespace smolvla::napi {

template <typename Result>
class PromiseWorker : public Napi::AsyncWorker {
 public:
  using Work = std::function<Result()>;
  using Done = std::function<Napi::Value(Napi::Env, Result&)>;

  PromiseWorker(Napi::Env env, const char* name, Work work, Done done)
      : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)), done_(std::move(done)) {}

  Napi::Promise promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      result_ = work_();
    } catch (...) {
      error_ = describe_current_exception();
      SetError(error_.message);
    }
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
  Result result_{};
  ErrorInfo error_;
};

// Queues `work` (run off the JS thread) and returns a Promise resolved with done(env, result).
template <typename Result>
Napi::Promise run_async(Napi::Env env, const char* name, std::function<Result()> work,
                        std::function<Napi::Value(Napi::Env, Result&)> done) {
  auto* worker = new PromiseWorker<Result>(env, name, std::move(work), std::move(done));
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
