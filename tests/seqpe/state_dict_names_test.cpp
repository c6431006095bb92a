// The names and order of every tensor a checkpoint holds, for a GPT and a ViT each with SeqPE (the
// models with the most nested modules: blocks, the MLP, the encoder's blocks, per-layer W_qk) and a
// GPT with learned positions, against the lists the code wrote before ModuleList and ModuleDict
// replaced the hand-written containers (the fork point's named_parameters() and named_buffers(),
// pasted here): checkpoints written before the change load after it.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/rng.h"
#include "models/gpt.h"
#include "models/vit.h"
#include "seqpe/seqpe_position_encoding.h"

using seqpe::ApplyMethod;
using seqpe::QkProjection;

namespace {

// Every parameter's name, then every buffer's, in order, separated by spaces.
std::string names_of(const engine::Module& model) {
  std::string names;
  for (const auto& named : {model.named_parameters(), model.named_buffers()})
    for (const auto& [name, tensor] : named) names += (names.empty() ? "" : " ") + name;
  return names;
}

// SeqPE of width 8 for a model of width 8, 2 heads, 2 layers, with a W_qk per layer and 2 encoder
// blocks; dims 2 gives the image encoder (a dimension embedding).
seqpe::SeqPeConfig tiny_seqpe(int64_t dims, bool class_token) {
  seqpe::SeqPeConfig c;
  c.apply = ApplyMethod::attn_scalar;
  c.qk_projection = QkProjection::multi;
  c.pe_max_position = 100;
  c.model_width = 8;
  c.model_heads = 2;
  c.model_layers = 2;
  c.transfer_heads = 2;
  c.class_token = class_token;
  c.encoder.dims = dims;
  c.encoder.max_digits = dims == 1 ? 2 : 1;
  c.encoder.channels = 8;
  c.encoder.heads = 2;
  c.encoder.layers = 2;
  c.encoder.out_features = c.out_features();
  return c;
}

models::GptConfig tiny_gpt(const std::string& position_encoding) {
  models::GptConfig c;
  c.vocab_size = 11;
  c.context = 8;
  c.layers = 2;
  c.channels = 8;
  c.heads = 2;
  c.position_encoding = position_encoding;
  return c;
}

// A 2 x 2 grid of 4 x 4 patches, width 8, 2 heads, 2 blocks.
models::VitConfig tiny_vit(const std::string& position_encoding) {
  models::VitConfig c;
  c.image_size = 8;
  c.patch = 4;
  c.in_channels = 1;
  c.width = 8;
  c.depth = 2;
  c.heads = 2;
  c.num_classes = 3;
  c.position_encoding = position_encoding;
  return c;
}

// What the fork point wrote, one name after another.
const char* const kGptSeqpe =
    "wte.weight h.0.ln_1.weight h.0.ln_1.bias h.0.attn.c_attn.weight h.0.attn.c_attn.bias "
    "h.0.attn.c_proj.weight h.0.attn.c_proj.bias h.0.ln_2.weight h.0.ln_2.bias h.0.mlp.c_fc.weight "
    "h.0.mlp.c_fc.bias h.0.mlp.c_proj.weight h.0.mlp.c_proj.bias h.1.ln_1.weight h.1.ln_1.bias "
    "h.1.attn.c_attn.weight h.1.attn.c_attn.bias h.1.attn.c_proj.weight h.1.attn.c_proj.bias "
    "h.1.ln_2.weight h.1.ln_2.bias h.1.mlp.c_fc.weight h.1.mlp.c_fc.bias h.1.mlp.c_proj.weight "
    "h.1.mlp.c_proj.bias ln_f.weight ln_f.bias pe.encoder.readout pe.encoder.digit_embedding.weight "
    "pe.encoder.slot_embedding.weight pe.encoder.h.0.ln_1.weight pe.encoder.h.0.ln_1.bias "
    "pe.encoder.h.0.attn.c_attn.weight pe.encoder.h.0.attn.c_attn.bias "
    "pe.encoder.h.0.attn.c_proj.weight pe.encoder.h.0.attn.c_proj.bias pe.encoder.h.0.ln_2.weight "
    "pe.encoder.h.0.ln_2.bias pe.encoder.h.0.mlp.c_fc.weight pe.encoder.h.0.mlp.c_fc.bias "
    "pe.encoder.h.0.mlp.c_proj.weight pe.encoder.h.0.mlp.c_proj.bias pe.encoder.h.1.ln_1.weight "
    "pe.encoder.h.1.ln_1.bias pe.encoder.h.1.attn.c_attn.weight pe.encoder.h.1.attn.c_attn.bias "
    "pe.encoder.h.1.attn.c_proj.weight pe.encoder.h.1.attn.c_proj.bias pe.encoder.h.1.ln_2.weight "
    "pe.encoder.h.1.ln_2.bias pe.encoder.h.1.mlp.c_fc.weight pe.encoder.h.1.mlp.c_fc.bias "
    "pe.encoder.h.1.mlp.c_proj.weight pe.encoder.h.1.mlp.c_proj.bias pe.encoder.ln_f.weight "
    "pe.encoder.ln_f.bias pe.encoder.out_proj.weight pe.encoder.out_proj.bias pe.qk_proj.0.weight "
    "pe.qk_proj.0.bias pe.qk_proj.1.weight pe.qk_proj.1.bias";
const char* const kGptApe =
    "wte.weight wpe.weight h.0.ln_1.weight h.0.ln_1.bias h.0.attn.c_attn.weight h.0.attn.c_attn.bias "
    "h.0.attn.c_proj.weight h.0.attn.c_proj.bias h.0.ln_2.weight h.0.ln_2.bias h.0.mlp.c_fc.weight "
    "h.0.mlp.c_fc.bias h.0.mlp.c_proj.weight h.0.mlp.c_proj.bias h.1.ln_1.weight h.1.ln_1.bias "
    "h.1.attn.c_attn.weight h.1.attn.c_attn.bias h.1.attn.c_proj.weight h.1.attn.c_proj.bias "
    "h.1.ln_2.weight h.1.ln_2.bias h.1.mlp.c_fc.weight h.1.mlp.c_fc.bias h.1.mlp.c_proj.weight "
    "h.1.mlp.c_proj.bias ln_f.weight ln_f.bias";
const char* const kVitSeqpe =
    "cls_token patch_embed.proj.weight patch_embed.proj.bias blocks.0.ln_1.weight blocks.0.ln_1.bias "
    "blocks.0.attn.c_attn.weight blocks.0.attn.c_attn.bias blocks.0.attn.c_proj.weight "
    "blocks.0.attn.c_proj.bias blocks.0.ln_2.weight blocks.0.ln_2.bias blocks.0.mlp.c_fc.weight "
    "blocks.0.mlp.c_fc.bias blocks.0.mlp.c_proj.weight blocks.0.mlp.c_proj.bias blocks.1.ln_1.weight "
    "blocks.1.ln_1.bias blocks.1.attn.c_attn.weight blocks.1.attn.c_attn.bias "
    "blocks.1.attn.c_proj.weight blocks.1.attn.c_proj.bias blocks.1.ln_2.weight blocks.1.ln_2.bias "
    "blocks.1.mlp.c_fc.weight blocks.1.mlp.c_fc.bias blocks.1.mlp.c_proj.weight "
    "blocks.1.mlp.c_proj.bias norm.weight norm.bias head.weight head.bias pe.class_position "
    "pe.encoder.readout pe.encoder.digit_embedding.weight pe.encoder.slot_embedding.weight "
    "pe.encoder.dim_embedding.weight pe.encoder.h.0.ln_1.weight pe.encoder.h.0.ln_1.bias "
    "pe.encoder.h.0.attn.c_attn.weight pe.encoder.h.0.attn.c_attn.bias "
    "pe.encoder.h.0.attn.c_proj.weight pe.encoder.h.0.attn.c_proj.bias pe.encoder.h.0.ln_2.weight "
    "pe.encoder.h.0.ln_2.bias pe.encoder.h.0.mlp.c_fc.weight pe.encoder.h.0.mlp.c_fc.bias "
    "pe.encoder.h.0.mlp.c_proj.weight pe.encoder.h.0.mlp.c_proj.bias pe.encoder.h.1.ln_1.weight "
    "pe.encoder.h.1.ln_1.bias pe.encoder.h.1.attn.c_attn.weight pe.encoder.h.1.attn.c_attn.bias "
    "pe.encoder.h.1.attn.c_proj.weight pe.encoder.h.1.attn.c_proj.bias pe.encoder.h.1.ln_2.weight "
    "pe.encoder.h.1.ln_2.bias pe.encoder.h.1.mlp.c_fc.weight pe.encoder.h.1.mlp.c_fc.bias "
    "pe.encoder.h.1.mlp.c_proj.weight pe.encoder.h.1.mlp.c_proj.bias pe.encoder.ln_f.weight "
    "pe.encoder.ln_f.bias pe.encoder.out_proj.weight pe.encoder.out_proj.bias pe.qk_proj.0.weight "
    "pe.qk_proj.0.bias pe.qk_proj.1.weight pe.qk_proj.1.bias";
const char* const kVitApe =
    "cls_token pos_embed patch_embed.proj.weight patch_embed.proj.bias blocks.0.ln_1.weight "
    "blocks.0.ln_1.bias blocks.0.attn.c_attn.weight blocks.0.attn.c_attn.bias "
    "blocks.0.attn.c_proj.weight blocks.0.attn.c_proj.bias blocks.0.ln_2.weight blocks.0.ln_2.bias "
    "blocks.0.mlp.c_fc.weight blocks.0.mlp.c_fc.bias blocks.0.mlp.c_proj.weight "
    "blocks.0.mlp.c_proj.bias blocks.1.ln_1.weight blocks.1.ln_1.bias blocks.1.attn.c_attn.weight "
    "blocks.1.attn.c_attn.bias blocks.1.attn.c_proj.weight blocks.1.attn.c_proj.bias "
    "blocks.1.ln_2.weight blocks.1.ln_2.bias blocks.1.mlp.c_fc.weight blocks.1.mlp.c_fc.bias "
    "blocks.1.mlp.c_proj.weight blocks.1.mlp.c_proj.bias norm.weight norm.bias head.weight head.bias";

}  // namespace

TEST_CASE("checkpoint names: GPT with SeqPE (per-layer W_qk, 2 encoder blocks)") {
  engine::Generator gen(1);
  models::Gpt model(tiny_gpt("seqpe"), gen, std::make_shared<seqpe::SeqPe>(tiny_seqpe(1, false), gen));
  CHECK(names_of(model) == kGptSeqpe);
}

TEST_CASE("checkpoint names: GPT with learned positions") {
  engine::Generator gen(2);
  models::Gpt model(tiny_gpt("ape"), gen, nullptr);
  CHECK(names_of(model) == kGptApe);
}

TEST_CASE("checkpoint names: ViT with 2-D SeqPE and a class position") {
  engine::Generator gen(3);
  models::Vit model(tiny_vit("seqpe"), gen, std::make_shared<seqpe::SeqPe>(tiny_seqpe(2, true), gen));
  CHECK(names_of(model) == kVitSeqpe);
}

TEST_CASE("checkpoint names: ViT with learned positions") {
  engine::Generator gen(4);
  models::Vit model(tiny_vit("ape"), gen, nullptr);
  CHECK(names_of(model) == kVitApe);
}
