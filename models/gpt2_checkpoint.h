// Hugging Face GPT-2 checkpoints <-> models::Gpt.
//
// Names match one to one (wte, wpe, h.N.ln_1, h.N.attn.c_attn, h.N.attn.c_proj, h.N.ln_2,
// h.N.mlp.c_fc, h.N.mlp.c_proj, ln_f), with two differences in what the files hold:
//   - HF's Conv1D stores its weight as (in, out); our Linear, like torch.nn.Linear, as (out, in).
//     The weights of c_attn, attn.c_proj, c_fc and mlp.c_proj are therefore transposed.
//   - GPT2LMHeadModel files prefix names with "transformer." and may carry "lm_head.weight" (tied
//     to wte) and the causal-mask buffers "attn.bias" / "attn.masked_bias"; these are accepted and
//     ignored.
#pragma once

#include <map>
#include <string>

#include "engine/tensor.h"
#include "models/gpt.h"

namespace models {

// True for the names whose weight HF stores transposed (Conv1D), e.g. "h.3.mlp.c_fc.weight".
bool is_gpt2_conv1d_weight(const std::string& name);

// Copies HF-named, HF-layout tensors into `model`. Every parameter of the model must be present
// with the HF shape; unknown names are refused. Errors name the tensor and both shapes.
void load_gpt2_weights(Gpt& model, const std::map<std::string, engine::Tensor>& hf_tensors);

// The model's parameters under HF names (without the "transformer." prefix) in HF layout: fresh
// contiguous copies, ready for engine::save_safetensors.
std::map<std::string, engine::Tensor> export_gpt2_weights(const Gpt& model);

// Loads a .safetensors file written by Hugging Face (or by save_gpt2_safetensors) into `model`.
void load_gpt2_safetensors(Gpt& model, const std::string& path);
// Writes the model as a Hugging Face GPT-2 safetensors file (metadata {"format": "pt"}).
void save_gpt2_safetensors(const Gpt& model, const std::string& path);

}  // namespace models
