// The ViT classifier (models/vit.h): patch unfolding, class token, learned positions resized per
// grid, the forward.
#include "models/vit.h"

#include "engine/autograd.h"
#include "engine/module_dict.h"
#include "models/model_config.h"
#include "models/pe/ape.h"
#include "ops/dropout.h"
#include "ops/elementwise.h"
#include "ops/indexing.h"

namespace models {

namespace {
void fill_truncated_normal(const Tensor& t, double std, engine::Generator& gen) {
  engine::fill_random_(t, gen, {engine::RandomDistribution::truncated_normal, 0.0, std, -2.0, 2.0});
}
}  // namespace

Tensor unfold_patches(const Tensor& images, int64_t patch) {
  ENGINE_CHECK(images.dim() == 4, "unfold_patches: images must be (B, Cin, H, W), got ", images.describe());
  const int64_t B = images.size(0), Cin = images.size(1), H = images.size(2), W = images.size(3);
  ENGINE_CHECK(patch > 0 && H % patch == 0 && W % patch == 0, "unfold_patches: image sides must be multiples of the patch ",
               patch, ", got ", images.describe());
  const int64_t gh = H / patch, gw = W / patch;
  return images.reshape({B, Cin, gh, patch, gw, patch})
      .permute({0, 2, 4, 1, 3, 5})
      .reshape({B, gh * gw, Cin * patch * patch});
}

Vit::Vit(const VitConfig& config, engine::Generator& init_gen, std::shared_ptr<PositionEncoding> pe)
    : config_(config), train_grid_(config.image_size / config.patch), pe_(std::move(pe)) {
  validate_vit_config(config);
  check_position_encoding_matches("ViT", config.position_encoding, pe_.get());
  const int64_t C = config.width;
  auto patch_module = register_module("patch_embed", std::make_shared<engine::ModuleDict<Linear>>());
  patch_embed_ = patch_module->insert(
      "proj", std::make_shared<Linear>(config.in_channels * config.patch * config.patch, C, true, config.init_std,
                                       init_gen, config.dtype));
  cls_token_ = &register_parameter("cls_token", Tensor::zeros({1, 1, C}, config.dtype));
  if (config.position_encoding == "ape")
    pos_embed_ = &register_parameter("pos_embed", Tensor::zeros({1, 1 + train_grid_ * train_grid_, C}, config.dtype));
  BlockConfig block;
  block.channels = C;
  block.heads = config.heads;
  block.mlp_ratio = config.mlp_ratio;
  block.layer_norm_eps = config.layer_norm_eps;
  block.causal = false;
  block.qkv_bias = true;
  block.residual_dropout = config.dropout;
  block.attention_dropout = config.attention_dropout;
  block.init_std = block.projection_init_std = config.init_std;
  block.dtype = config.dtype;
  blocks_ = register_module("blocks", std::make_shared<engine::ModuleList<TransformerBlock>>());  // blocks.0, ...
  for (int64_t layer = 0; layer < config.depth; ++layer)
    blocks_->append(std::make_shared<TransformerBlock>(block, init_gen));
  norm_ = register_module("norm", std::make_shared<LayerNorm>(C, config.layer_norm_eps, config.dtype));
  head_ = register_module("head", std::make_shared<Linear>(C, config.num_classes, true, config.init_std, init_gen,
                                                           config.dtype));
  // timm's init: truncated normal for every linear weight and for the class token and positions
  // (biases stay zero, LayerNorms at 1 and 0). The PE's own parameters keep their init.
  engine::NoGradGuard no_grad;
  for (auto& [name, param] : named_parameters())
    if (param.dim() >= 2) fill_truncated_normal(param, config.init_std, init_gen);
  if (pe_) register_module("pe", pe_);
}

Tensor Vit::ape_for_grid(int64_t grid_h, int64_t grid_w) const {
  if (grid_h == train_grid_ && grid_w == train_grid_) return *pos_embed_;
  ENGINE_CHECK(!is_training(), "ViT: the learned positions are trained at a ", train_grid_, "x", train_grid_,
               " grid; a ", grid_h, "x", grid_w, " grid interpolates them, which is for evaluation only");
  engine::NoGradGuard no_grad;
  const int64_t C = config_.width;
  Tensor table = pos_embed_->select(0, 0);  // (1 + g², C)
  Tensor patches = pe::interpolate_bicubic(table.narrow(0, 1, train_grid_ * train_grid_), train_grid_, train_grid_,
                                       grid_h, grid_w);
  return ops::concat({table.narrow(0, 0, 1), patches}, 0).reshape({1, 1 + grid_h * grid_w, C});
}

Tensor Vit::forward(const Tensor& images, engine::Generator& dropout_gen) {
  ENGINE_CHECK(images.dim() == 4 && images.size(1) == config_.in_channels, "Vit::forward: images must be (B, ",
               config_.in_channels, ", H, W), got ", images.describe());
  const int64_t B = images.size(0), C = config_.width;
  const int64_t grid_h = images.size(2) / config_.patch, grid_w = images.size(3) / config_.patch;
  Tensor h = patch_embed_->forward(unfold_patches(images, config_.patch));  // (B, g_h·g_w, C)
  h = ops::concat({cls_token_->expand({B, 1, C}), h}, 1);                   // (B, T, C)
  if (pos_embed_) h = h + ape_for_grid(grid_h, grid_w);
  if (pe_) {
    Positions p;
    p.grid_h = grid_h;
    p.grid_w = grid_w;
    p.class_token = true;
    p.batch = B;
    p.device = images.device();
    pe_->prepare(p);
    Tensor added = pe_->input_embedding();
    if (added.defined()) h = h + added;
  }
  // Each block's last residual add is left to the norm after it (PendingResidual).
  PendingResidual x{ops::dropout(h, config_.dropout, dropout_gen, is_training()), Tensor()};
  for (size_t layer = 0; layer < blocks_->size(); ++layer)
    x = blocks_->at(layer).forward(x, int(layer), pe_.get(), dropout_gen);
  // The final norm reads the class token only: its row of the last add, normalised.
  const Tensor class_token = x.stream.select(1, 0);                                      // (B, C)
  const Tensor class_branch = x.branch.defined() ? x.branch.select(1, 0) : Tensor();     // (B, C)
  return head_->forward(norm_->forward(class_token, class_branch).normed);                // (B, C) -> (B, K)
}

}  // namespace models
