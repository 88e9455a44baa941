// Every C++ exception becomes a JS Error here, never an abort. Errors carry a `code`:
// ERR_SMOLVLA_ARGUMENT (bad input), ERR_SMOLVLA_DISPOSED (used after dispose()), ERR_SMOLVLA_TORCH
// (libtorch refused), ERR_SMOLVLA_OOM (out of memory), ERR_SMOLVLA (other).
#pragma once

#include <napi.h>

#include <exception>
#include <string>

namespace smolvla::napi {

struct ErrorInfo {
  std::string message;
  std::string code;
};

// Classifies the exception currently being handled (call inside a catch block).
ErrorInfo describe_current_exception();

Napi::Error make_error(Napi::Env env, const ErrorInfo& info);

// Wraps a callback so that any C++ exception surfaces as a JS exception.
template <Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Value guarded(const Napi::CallbackInfo& info) {
  try {
    return F(info);
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    throw make_error(info.Env(), describe_current_exception());
  }
}

template <typename Fn>
auto guard(Napi::Env env, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    throw make_error(env, describe_current_exception());
  }
}

}  // namespace smolvla::napi
