// Per-environment constructor references of the addon's classes (N-API instance data).
#pragma once

#include <napi.h>

namespace smolvla::napi {

struct AddonData {
  Napi::FunctionReference tensor_ctor;
  Napi::FunctionReference model_ctor;
  Napi::FunctionReference cache_ctor;
  Napi::FunctionReference cancel_ctor;
  Napi::FunctionReference trainer_ctor;
  Napi::FunctionReference process_group_ctor;
};

// Created on first use and owned by the environment.
AddonData& addon_data(Napi::Env env);

}  // namespace smolvla::napi
