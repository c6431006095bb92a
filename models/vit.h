// A Vision Transformer classifier (Dosovitskiy et al. 2021; timm's VisionTransformer as DeiT and
// docs/method.md#image-classification use it): non-overlapping p×p patches embedded by one GEMM on the unfolded
// patches, a learned class token in front, `depth` pre-LN bidirectional blocks, a final LayerNorm
// and a linear head on the class token. Any image whose sides are multiples of the patch gives a
// g_h×g_w grid; the position encoding sees it as Positions{grid_h, grid_w, class_token = true}.
// With pe "ape" the model owns timm's pos_embed (1, 1 + g², C); at another grid its patch part is
// resized by bicubic interpolation and the class row kept (docs/method.md#baselines; evaluation only).
//
//   B = batch, Cin = image channels, H×W = image, p = patch, g_h×g_w = grid, T = 1 + g_h·g_w tokens,
//   C = width, K = classes
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/module.h"
#include "engine/module_list.h"
#include "engine/rng.h"
#include "models/layers.h"
#include "models/position_encoding.h"
#include "models/transformer_block.h"

namespace models {

struct VitConfig {
  int64_t image_size = 224;  // the training resolution: sets the APE grid
  int64_t patch = 16;
  int64_t in_channels = 3;   // 1 for grey images
  int64_t width = 384;
  int64_t depth = 12;
  int64_t heads = 6;
  int64_t mlp_ratio = 4;
  double layer_norm_eps = 1e-6;
  int64_t num_classes = 1000;
  double dropout = 0.0;      // after the position encoding and on each residual branch
  double attention_dropout = 0.0;  // on the attention probabilities (timm's attn_drop_rate)
  double init_std = 0.02;    // truncated normal for linears, class token and pos_embed
  std::string position_encoding = "ape";  // "ape" owns pos_embed; any other name comes from a PositionEncoding
  nlohmann::json position_encoding_options = nlohmann::json::object();  // see models/pe/factory.h
  engine::Dtype dtype = engine::Dtype::f32;
};

class Vit : public engine::Module {
 public:
  // `pe` supplies the position encoding for every name but "ape" (may be null for "nope").
  Vit(const VitConfig& config, engine::Generator& init_gen, std::shared_ptr<PositionEncoding> pe = nullptr);

  // images: (B, Cin, H, W) with H and W multiples of the patch -> logits (B, K). `dropout_gen`
  // draws the dropout masks in training mode.
  Tensor forward(const Tensor& images, engine::Generator& dropout_gen);

  const VitConfig& config() const { return config_; }

 private:
  // (1, T, C) learned positions for a g_h×g_w grid: pos_embed itself, or its resized copy.
  Tensor ape_for_grid(int64_t grid_h, int64_t grid_w) const;

  VitConfig config_;
  int64_t train_grid_;
  std::shared_ptr<Linear> patch_embed_;  // Cin·p·p -> C
  Tensor* cls_token_;                    // (1, 1, C)
  Tensor* pos_embed_ = nullptr;          // (1, 1 + g², C), "ape" only
  std::shared_ptr<engine::ModuleList<TransformerBlock>> blocks_;  // blocks
  std::shared_ptr<LayerNorm> norm_;
  std::shared_ptr<Linear> head_;
  std::shared_ptr<PositionEncoding> pe_;
};

// (B, Cin, H, W) -> (B, g_h·g_w, Cin·p·p): patches in raster order, each flattened as (Cin, p, p)
// like a Conv2d kernel. A chain of differentiable views (one copy).
Tensor unfold_patches(const Tensor& images, int64_t patch);

}  // namespace models
