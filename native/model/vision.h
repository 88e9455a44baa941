// SmolVLM vision encoder (SigLIP as adapted by Idefics3/SmolVLM) and the pixel-shuffle connector,
// with transformers' module names.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include <map>
#include <mutex>
#include <utility>

#include "model/config.h"
#include "model/packed_linear.h"

namespace smolvla::model {

// Position ids of an nb_h x nb_w patch grid out of a G x G grid, exactly as transformers computes
// them (bucketized fractional coordinates; not the identity for some G).
at::Tensor vision_position_ids(int64_t grid, int64_t nb_h, int64_t nb_w);

struct VisionEmbeddingsImpl : torch::nn::Module {
  explicit VisionEmbeddingsImpl(const VisionDims& d);
  at::Tensor forward(const at::Tensor& pixels);
  torch::nn::Conv2d patch_embedding{nullptr};
  torch::nn::Embedding position_embedding{nullptr};

 private:
  int64_t patch_, grid_;
  // Position ids per (nb_h, nb_w), built once.
  std::map<std::pair<int64_t, int64_t>, at::Tensor> position_ids_;
  std::mutex mutex_;
};
TORCH_MODULE(VisionEmbeddings);

struct VisionAttentionImpl : torch::nn::Module {
  explicit VisionAttentionImpl(const VisionDims& d);
  at::Tensor forward(const at::Tensor& x);
  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, out_proj{nullptr};

 private:
  int64_t heads_, head_dim_;
  PackedLinear qkv_;
};
TORCH_MODULE(VisionAttention);

struct VisionMlpImpl : torch::nn::Module {
  explicit VisionMlpImpl(const VisionDims& d);
  at::Tensor forward(const at::Tensor& x);
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(VisionMlp);

struct VisionEncoderLayerImpl : torch::nn::Module {
  explicit VisionEncoderLayerImpl(const VisionDims& d);
  at::Tensor forward(const at::Tensor& x);
  VisionAttention self_attn{nullptr};
  torch::nn::LayerNorm layer_norm1{nullptr}, layer_norm2{nullptr};
  VisionMlp mlp{nullptr};
};
TORCH_MODULE(VisionEncoderLayer);

struct VisionEncoderImpl : torch::nn::Module {
  explicit VisionEncoderImpl(const VisionDims& d);
  torch::nn::ModuleList layers;
};
TORCH_MODULE(VisionEncoder);

struct VisionTransformerImpl : torch::nn::Module {
  explicit VisionTransformerImpl(const VisionDims& d);
  // (B, 3, H, W) in [-1, 1] -> (B, Npatch, Dvis), after post_layernorm.
  at::Tensor forward(const at::Tensor& pixels);
  VisionEmbeddings embeddings{nullptr};
  VisionEncoder encoder{nullptr};
  torch::nn::LayerNorm post_layernorm{nullptr};
};
TORCH_MODULE(VisionTransformer);

struct ModalityProjectionImpl : torch::nn::Module {
  ModalityProjectionImpl(int64_t in, int64_t out);
  torch::nn::Linear proj{nullptr};
};
TORCH_MODULE(ModalityProjection);

// Pixel shuffle (transformers' op sequence) followed by a bias-free Linear.
struct ConnectorImpl : torch::nn::Module {
  ConnectorImpl(int64_t vision_hidden, int64_t text_hidden, int64_t scale_factor);
  at::Tensor forward(const at::Tensor& x);
  ModalityProjection modality_projection{nullptr};

 private:
  int64_t scale_;
};
TORCH_MODULE(Connector);

at::Tensor shuffle_patches(const at::Tensor& x, int64_t scale);

}  // namespace smolvla::model
