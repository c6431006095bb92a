// Every SeqPE setting of a model and its training as one JSON object: the model config's
// "position_encoding_options" when "position_encoding" is "seqpe" (models/model_config.h), so that
// the model.json saved beside the weights rebuilds the SeqPE on its own (seqpe/seqpe_models.h).
//
// Absent fields take the reference's values: the text setting (docs/method.md#language-modelling) for a GPT, the image setting
// (docs/method.md#image-classification) for a ViT. Sizes the reference ties to the main model are read from the model config:
// D_pe and the encoder's heads default to the model's width and heads (768 / 12 for GPT-2 small,
// 384 / 6 for ViT-S), the distillation's per-head split to the model's heads, the training block to
// the GPT's context or the ViT's patch grid. max_digits follows from pe_max_position and base
// (docs/method.md#position-tokens); D_out from the apply method (docs/method.md#the-position-encoder). Unknown fields are refused and each bad value is an
// error naming the field ("SeqPE options.encoder field 'layers' must be >= 1, got 0").
//
//   {
//     "pe_max_position": 20000,    PE_MAX_POSITION: [0, 20000) in 1-D; 10000 = a 100 x 100 grid in 2-D
//     "base": 10,                  digit base
//     "padding": "left",           "left" | "right"
//     "apply": "attn_scalar",      "input_add" | "attn_add" | "attn_mul" | "attn_scalar" (ViT: "attn_mul")
//     "qk_projection": "single",   "single" | "multi" | "none" (ViT: "multi")
//     "multi_head": true,          split D_out = model width per head, else D_out = head dim
//     "scalar_scale": 1.0,         α of attn_scalar
//     "init_std": 0.02,            W_qk and the ViT class-token PE
//     "truncated_normal_init": false,   (ViT: true)
//     "clip": 5.0,                 max-norm of SeqPE's gradients, clipped apart from the model's
//     "encoder": {"channels": C, "heads": H, "layers": 2, "causal": true, "residual_dropout": 0.1,
//                 "layer_norm_eps": 1e-5, "temperature": 1.0, "init_std": 0.02},
//     "contrastive": {"weight": 0.1, "batch_size": 16, "num_candidates": 32,
//                     "random_only_probability": 0, "hard_negative_probability": 0.4,
//                     "distributional_probability": 0.6, "hard_negative_ratio": 0.25,
//                     "distributional_range": 256, "batches_per_epoch": 0},
//                     (ViT: 32, 64, 0.5 / 0.3 / 0.2, 0.2, 196)
//     "transfer": {"weight": 0.1, "batch_size": 16, "num_indices": 32, "heads": H,
//                  "on_shifted_steps": false, "batches_per_epoch": 0},      (ViT: 32, 64)
//     "random_shift": {"enabled": true, "rate": 0.1, "downsample": 320, "blocks": 16,
//                      "restart_offset_range": 32}                            (ViT: blocks 32)
//   }
// num_indices defaults to min(32 or 64, block cells) so that a short context still works.
#pragma once

#include <nlohmann/json.hpp>

#include "models/gpt.h"
#include "models/vit.h"
#include "seqpe/contrastive_sampler.h"
#include "seqpe/main_position_sampler.h"
#include "seqpe/seqpe_position_encoding.h"
#include "seqpe/transfer_sampler.h"

namespace seqpe {

struct SeqPeOptions {
  SeqPeConfig pe;
  MainPositionSamplerConfig main_sampler;
  ContrastiveSamplerConfig contrastive;
  TransferSamplerConfig transfer;
  double clip = 5.0;  // docs/method.md#the-position-encoder: SeqPE's gradients are clipped apart from the model's, max-norm 5
};

// The options of a GPT (text setting) or a ViT (image setting) whose position_encoding is "seqpe",
// from its position_encoding_options. Seeds (dropout, samplers) are the caller's.
SeqPeOptions seqpe_options(const models::GptConfig& model);
SeqPeOptions seqpe_options(const models::VitConfig& model);

// `model` with its position_encoding_options written out in full, so that the model.json saved
// from it does not depend on these defaults.
models::GptConfig with_full_seqpe_options(models::GptConfig model);
models::VitConfig with_full_seqpe_options(models::VitConfig model);

// Every field, explicit (what model.json stores); reading it back gives the same options.
nlohmann::json seqpe_options_to_json(const SeqPeOptions& options);

}  // namespace seqpe
