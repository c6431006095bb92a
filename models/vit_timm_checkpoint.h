// timm VisionTransformer checkpoints <-> models::Vit.
//
// timm (timm/models/vision_transformer.py, global_pool "token", class token, learned pos_embed with
// the class row, qkv bias) and our ViT hold the same tensors under other names, one in another
// layout:
//   ours                          timm
//   patch_embed.proj.weight       patch_embed.proj.weight  (C, Cin·p·p) <-> Conv2d (C, Cin, p, p); our
//                                 patch GEMM flattens each patch as (Cin, p, p), so this is a reshape
//   blocks.N.ln_1 / ln_2          blocks.N.norm1 / norm2
//   blocks.N.attn.c_attn          blocks.N.attn.qkv        (3C, C): rows q, k, v, each head by head, in both
//   blocks.N.attn.c_proj          blocks.N.attn.proj
//   blocks.N.mlp.c_fc / c_proj    blocks.N.mlp.fc1 / fc2
//   cls_token, pos_embed, patch_embed.proj.bias, norm.*, head.*: the same.
// timm's MLP uses the exact (erf) GELU, ours the tanh approximation (GPT-2's gelu_new): imported
// weights give logits within a few 1e-4 relative of timm's, not bitwise equal (docs/architecture.md).
// Options timm may add (layer scale ls1/ls2, qk-norm, fc_norm, register tokens) have no counterpart
// here: such tensors are refused by name.
//
//   C = width, Cin = image channels, p = patch, g = grid side
#pragma once

#include <map>
#include <string>

#include "engine/tensor.h"
#include "models/vit.h"

namespace models {

// The timm name of one of our ViT parameter names, e.g. "blocks.3.mlp.c_fc.weight" -> "blocks.3.mlp.fc1.weight".
std::string timm_vit_name(const std::string& name);

// Copies timm-named, timm-layout tensors into `model`. Every parameter of the model must be present
// with timm's shape, and every tensor of the checkpoint must be used; errors name the tensor and
// both shapes.
void load_timm_vit_weights(Vit& model, const std::map<std::string, engine::Tensor>& timm_tensors);

// The model's parameters under timm's names in timm's layout: fresh contiguous copies, ready for
// engine::save_safetensors.
std::map<std::string, engine::Tensor> export_timm_vit_weights(const Vit& model);

// Loads a timm ViT .safetensors file (as timm's save or load_file/save_file write it) into `model`.
void load_timm_vit_safetensors(Vit& model, const std::string& path);
// Writes the model as a timm ViT safetensors file (metadata {"format": "pt"}).
void save_timm_vit_safetensors(const Vit& model, const std::string& path);

}  // namespace models
