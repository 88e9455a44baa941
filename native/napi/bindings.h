// Registration hooks, one per binding file; addon.cc calls them all.
#pragma once

#include <napi.h>

namespace smolvla::napi {

void register_runtime(Napi::Env env, Napi::Object exports);
void register_ops(Napi::Env env, Napi::Object exports);
void register_preprocess(Napi::Env env, Napi::Object exports);
void register_io(Napi::Env env, Napi::Object exports);
void register_trainer(Napi::Env env, Napi::Object exports);
void register_rtc(Napi::Env env, Napi::Object exports);

}  // namespace smolvla::napi
