// JS observation object {images, imgMasks, langTokens, langMasks, state} -> model::Observation.
// Only the JS-side types are checked here; model/inputs.h checks shapes against the config.
#pragma once

#include <napi.h>

#include "model/flow_matching.h"

namespace smolvla::napi {

model::Observation observation_from_js(const Napi::Value& value);

}  // namespace smolvla::napi
