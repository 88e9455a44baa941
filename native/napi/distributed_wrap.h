// The JS handle of a c10d process group (native/napi/distributed_binding.cc); the trainer binding
// reads the communicator behind it to build its gradient synchroniser.
#pragma once

#include <napi.h>

#include <memory>
#include <string>

namespace smolvla::train {
class Communicator;
}

namespace smolvla::napi {

// The communicator behind a NativeProcessGroup; an ArgumentError naming `name` otherwise.
std::shared_ptr<train::Communicator> communicator_of(const Napi::Value& v, const std::string& name);

void register_distributed(Napi::Env env, Napi::Object exports);

}  // namespace smolvla::napi
