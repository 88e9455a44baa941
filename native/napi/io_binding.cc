// safetensors from JS: async, since checkpoints are large and the disk may be slow.
#include <memory>

#include "core/check.h"
#include "io/safetensors.h"
#include "napi/args.h"
#include "napi/async.h"
#include "napi/bindings.h"
#include "napi/tensor_wrap.h"

namespace smolvla::napi {
namespace {

using Content = std::shared_ptr<io::SafetensorsContent>;

// readSafetensors(path) -> Promise<{tensors: {name: NativeTensor}, metadata: {key: string}}>
Napi::Value ReadSafetensors(const Napi::CallbackInfo& info) {
  const std::string path = arg_string(info, 0, "path");
  return run_async<Content>(
      info.Env(), "smolvla.readSafetensors",
      [path]() { return std::make_shared<io::SafetensorsContent>(io::read_safetensors(path)); },
      [](Napi::Env env, Content& content) -> Napi::Value {
        Napi::Object tensors = Napi::Object::New(env);
        for (auto& [name, t] : content->tensors) tensors.Set(name, TensorWrap::Wrap(env, t));
        Napi::Object metadata = Napi::Object::New(env);
        for (const auto& [k, v] : content->metadata) metadata.Set(k, v);
        Napi::Object out = Napi::Object::New(env);
        out.Set("tensors", tensors);
        out.Set("metadata", metadata);
        return out;
      },
      Lane::io);
}

// writeSafetensors(path, names: string[], tensors: NativeTensor[], metadata: {key: string}) -> Promise<void>
Napi::Value WriteSafetensors(const Napi::CallbackInfo& info) {
  const std::string path = arg_string(info, 0, "path");
  if (info.Length() < 4 || !info[1].IsArray() || !info[2].IsArray() || !info[3].IsObject()) {
    fail_argument("tensors", "expected (path, names[], tensors[], metadata)");
  }
  Napi::Array names = info[1].As<Napi::Array>();
  Napi::Array values = info[2].As<Napi::Array>();
  if (names.Length() != values.Length()) fail_argument("tensors", "names and tensors differ in length");
  auto tensors = std::make_shared<std::vector<std::pair<std::string, at::Tensor>>>();
  for (uint32_t i = 0; i < names.Length(); ++i) {
    const std::string name = names.Get(i).As<Napi::String>().Utf8Value();
    tensors->emplace_back(name, TensorWrap::TensorOf(values.Get(i), "tensors['" + name + "']"));
  }
  auto metadata = std::make_shared<std::map<std::string, std::string>>();
  Napi::Object meta = info[3].As<Napi::Object>();
  Napi::Array keys = meta.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); ++i) {
    const std::string key = keys.Get(i).As<Napi::String>().Utf8Value();
    Napi::Value v = meta.Get(key);
    if (!v.IsString()) fail_argument("metadata['" + key + "']", "expected a string value");
    (*metadata)[key] = v.As<Napi::String>().Utf8Value();
  }
  return run_async<bool>(
      info.Env(), "smolvla.writeSafetensors",
      [path, tensors, metadata]() {
        io::write_safetensors(path, *tensors, *metadata);
        return true;
      },
      [](Napi::Env env, bool&) -> Napi::Value { return env.Undefined(); },
      Lane::io);
}

}  // namespace

void register_io(Napi::Env env, Napi::Object exports) {
  exports.Set("readSafetensors", Napi::Function::New(env, guarded<ReadSafetensors>, "readSafetensors"));
  exports.Set("writeSafetensors", Napi::Function::New(env, guarded<WriteSafetensors>, "writeSafetensors"));
}

}  // namespace smolvla::napi
