#include "napi/errors.h"

#include <c10/util/Exception.h>

#include "core/check.h"

namespace smolvla::napi {

ErrorInfo describe_current_exception() {
  try {
    throw;
  } catch (const ArgumentError& e) {
    return {e.what(), "ERR_SMOLVLA_ARGUMENT"};
  } catch (const DisposedError& e) {
    return {e.what(), "ERR_SMOLVLA_DISPOSED"};
  } catch (const c10::Error& e) {
    // what() carries a C++ backtrace; users need the message.
    return {e.what_without_backtrace(), "ERR_SMOLVLA_TORCH"};
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
