// JS object (camelCase, from lib/model/nativeConfig.ts) -> model::ModelConfig.
#pragma once

#include <napi.h>

#include "model/config.h"

namespace smolvla::napi {

model::ModelConfig model_config_from_js(const Napi::Value& value);

}  // namespace smolvla::napi
