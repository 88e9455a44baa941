#include "napi/errors.h"

#include <c10/util/Exception.h>

#include "core/check.h"

namespace smolvla::napi {

ErrorInfo describe_current_exception() {
  try {
    throw;
  } catch (const ArgumentError& e) {
    return {e.what(), "ERR_SMOLVLA_ARGUMENT"};
  } catch (const IoError& e) {
    return {e.what(), "ERR_SMOLVLA_IO"};
  } catch (const NotFiniteError& e) {
    return {e.what(), "ERR_SMOLVLA_NOT_FINITE"};
  } catch (const DisposedError& e) {
    return {e.what(), "ERR_SMOLVLA_DISPOSED"};
  } catch (const c10::OutOfMemoryError& e) {
    // A device allocation failed (libtorch's CUDA caching allocator throws this): the model and its
    // caches stay usable; a smaller batch, dtype or another device can be tried.
    return {e.what_without_backtrace(), "ERR_SMOLVLA_OOM"};
  } catch (const c10::Error& e) {
    // what() carries a C++ backtrace; users need the message. CUDA failures (launch, illegal
    // access, no kernel image for this GPU) get their own code so callers can tell them apart.
    const std::string message = e.what_without_backtrace();
    // The CPU allocator reports a failed allocation as a plain c10::Error.
    if (message.find("can't allocate memory") != std::string::npos) return {message, "ERR_SMOLVLA_OOM"};
    const bool cuda = message.find("CUDA error") != std::string::npos || message.find("CUDA out of memory") != std::string::npos;
    return {message, cuda ? "ERR_SMOLVLA_CUDA" : "ERR_SMOLVLA_TORCH"};
  } catch (const std::bad_alloc&) {
    return {"out of memory", "ERR_SMOLVLA_OOM"};
  } catch (const std::exception& e) {
    return {e.what(), "ERR_SMOLVLA"};
  } catch (...) {
    return {"unknown native error", "ERR_SMOLVLA"};
  }
}

Napi::Error make_error(Napi::Env env, const ErrorInfo& info) {
  Napi::Error err = Napi::Error::New(env, info.message);
  err.Value().Set("code", Napi::String::New(env, info.code));
  return err;
}

}  // namespace smolvla::napi
