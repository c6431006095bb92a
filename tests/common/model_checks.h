// One check body for whole models on a CUDA backend (the emulator in test_models_emu, a real GPU
// in test_models_gpu): a tiny f32 GPT with each position encoding (ape, sin, rope, alibi, nope,
// SeqPE attn_scalar) and a tiny f32 ViT (ape, rope2d, rope_mixed, SeqPE attn_mul) are built twice
// from the same seed, one copy moved to CUDA; logits, loss, every parameter's gradient, the losses
// of a few AdamW steps and (GPT) KV-cache generation must agree with the CPU copy.
//
// Tolerances (f32): logits and loss 1e-5 relative (per-element roundings plus reductions in a
// different but fixed order); gradients 1e-4 relative to the largest entry (each gradient sums
// over B·T rows through several layers, whose f32 partial sums are grouped differently by the
// GPU kernels' trees); AdamW losses 1e-4 (the updates inherit the gradients' differences).
//
//   B batch, T tokens, V vocabulary, K classes
#pragma once

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "common/backend_checks.h"
#include "engine/optim/adamw.h"
#include "models/gpt.h"
#include "models/model_config.h"
#include "models/vit.h"
#include "ops/cross_entropy.h"
#include "seqpe/seqpe_position_encoding.h"

namespace model_checks {

using backend_checks::kCuda;
using backend_checks::relative_error;
using engine::Tensor;
using nlohmann::json;

inline constexpr double kForwardTolerance = 1e-5;
inline constexpr double kGradientTolerance = 1e-4;
inline constexpr int kAdamSteps = 3;

// "seqpe" here means a SeqPE built by seqpe/ and handed to the model.
inline json pe_options(const std::string& pe) { return pe == "sin" ? json{{"max_position", 31}} : json::object(); }

// SeqPE for a model of width 8, 2 heads, 2 layers: positions < 100 (1-D, 2 digits) or a 10 × 10
// grid (2-D, 1 digit per coordinate, with a class token).
inline seqpe::SeqPeConfig tiny_seqpe(seqpe::ApplyMethod apply, int64_t dims) {
  seqpe::SeqPeConfig c;
  c.apply = apply;
  c.qk_projection = dims == 1 ? seqpe::QkProjection::single : seqpe::QkProjection::multi;
  c.pe_max_position = 100;
  c.model_width = 8;
  c.model_heads = 2;
  c.model_layers = 2;
  c.transfer_heads = 2;
  c.class_token = dims == 2;
  c.encoder.dims = dims;
  c.encoder.max_digits = dims == 1 ? 2 : 1;
  c.encoder.channels = 8;
  c.encoder.heads = 2;
  c.encoder.layers = 1;
  c.encoder.residual_dropout = 0.0;
  c.encoder.dtype = engine::Dtype::f32;
  c.encoder.out_features = c.out_features();
  return c;
}

// Vocabulary 11, context 12, width 8, 2 heads, 2 layers, no dropout.
inline models::GptConfig tiny_gpt(const std::string& pe) {
  return models::gpt_config_from_json({{"vocab_size", 11}, {"context", 12}, {"layers", 2}, {"channels", 8},
                                       {"heads", 2}, {"mlp_ratio", 2}, {"embedding_dropout", 0.0},
                                       {"residual_dropout", 0.0}, {"attention_dropout", 0.0}, {"init_std", 0.3},
                                       {"position_encoding", pe}, {"position_encoding_options", pe_options(pe)},
                                       {"dtype", "f32"}});
}

// 8×8 images with 2 channels, 4×4 patches (a 2×2 grid + class token), width 8, 2 heads, 2 blocks.
inline models::VitConfig tiny_vit(const std::string& pe) {
  return models::vit_config_from_json({{"image_size", 8}, {"patch", 4}, {"in_channels", 2}, {"width", 8},
                                       {"depth", 2}, {"heads", 2}, {"mlp_ratio", 2}, {"num_classes", 3},
                                       {"init_std", 0.3}, {"position_encoding", pe},
                                       {"position_encoding_options", pe_options(pe)}, {"dtype", "f32"}});
}

inline std::shared_ptr<models::PositionEncoding> make_gpt_pe(const models::GptConfig& config,
                                                             engine::Generator& gen) {
  if (config.position_encoding == "seqpe")
    return std::make_shared<seqpe::SeqPe>(tiny_seqpe(seqpe::ApplyMethod::attn_scalar, 1), gen);
  return models::make_position_encoding(config, gen);
}

inline std::shared_ptr<models::PositionEncoding> make_vit_pe(const models::VitConfig& config,
                                                             engine::Generator& gen) {
  if (config.position_encoding == "seqpe")
    return std::make_shared<seqpe::SeqPe>(tiny_seqpe(seqpe::ApplyMethod::attn_mul, 2), gen);
  return models::make_position_encoding(config, gen);
}

// Gradients of every parameter of `cuda` equal those of `cpu` (same names, same order).
inline void check_gradients(const engine::Module& cpu, const engine::Module& cuda) {
  const auto cpu_params = cpu.named_parameters(), cuda_params = cuda.named_parameters();
  REQUIRE(cpu_params.size() == cuda_params.size());
  for (size_t i = 0; i < cpu_params.size(); ++i) {
    CAPTURE(cpu_params[i].first);
    REQUIRE(cuda_params[i].second.device() == kCuda);
    REQUIRE(cuda_params[i].second.grad().defined());
    CHECK(relative_error(cuda_params[i].second.grad(), cpu_params[i].second.grad()) < kGradientTolerance);
  }
}

// Forward, loss, gradients, then kAdamSteps AdamW steps: `loss_of(model, on_cuda)` returns the
// scalar loss of one fixed batch on the model's device and stores its logits in `logits`.
template <typename Model, typename LossFn>
void check_training(Model& cpu, Model& cuda, LossFn loss_of) {
  Tensor cpu_logits, cuda_logits;
  Tensor cpu_loss = loss_of(cpu, false, cpu_logits), cuda_loss = loss_of(cuda, true, cuda_logits);
  REQUIRE(cuda_logits.device() == kCuda);
  CHECK(relative_error(cuda_logits, cpu_logits) < kForwardTolerance);
  CHECK(relative_error(cuda_loss, cpu_loss) < kForwardTolerance);
  cpu_loss.backward();
  cuda_loss.backward();
  check_gradients(cpu, cuda);

  using engine::optim::AdamW;
  using engine::optim::ParamGroup;
  AdamW cpu_optimizer({ParamGroup{cpu.named_parameters(), 1e-2, 0.1}});
  AdamW cuda_optimizer({ParamGroup{cuda.named_parameters(), 1e-2, 0.1}});
  for (int step = 0; step < kAdamSteps; ++step) {
    CAPTURE(step);
    cpu_optimizer.step();
    cuda_optimizer.step();
    cpu_optimizer.zero_grad();
    cuda_optimizer.zero_grad();
    cpu_loss = loss_of(cpu, false, cpu_logits);
    cuda_loss = loss_of(cuda, true, cuda_logits);
    CHECK(relative_error(cuda_loss, cpu_loss) < kGradientTolerance);
    cpu_loss.backward();
    cuda_loss.backward();
  }
}

// A tiny GPT with position encoding `pe` (a factory name or "seqpe") on CUDA against the CPU.
inline void check_gpt(const std::string& pe) {
  const models::GptConfig config = tiny_gpt(pe);
  engine::Generator cpu_init(71), cuda_init(71);
  models::Gpt cpu(config, cpu_init, make_gpt_pe(config, cpu_init));
  models::Gpt cuda(config, cuda_init, make_gpt_pe(config, cuda_init));
  cuda.to_(kCuda);

  // (B, T) = (3, 7): tokens and next-token targets.
  const std::vector<int64_t> ids = {1, 5, 2, 2, 6, 0, 3, 4, 4, 1, 9, 10, 7, 8, 3, 3, 0, 6, 5, 2, 1, 8, 7, 9};
  const Tensor tokens = Tensor::from_indices({ids.begin(), ids.begin() + 21}, {3, 7});
  const Tensor targets = Tensor::from_indices({ids.begin() + 1, ids.begin() + 22}, {3, 7});
  engine::Generator dropout_gen(5);
  check_training(cpu, cuda, [&](models::Gpt& model, bool on_cuda, Tensor& logits) {
    const Tensor x = on_cuda ? tokens.to(kCuda) : tokens, y = on_cuda ? targets.to(kCuda) : targets;
    logits = model.forward(x, dropout_gen);
    return ops::cross_entropy(logits.reshape({21, config.vocab_size}), y.reshape({21}));
  });

  // Explicit, non-prefix positions (SeqPE and sinusoidal gather rows; RoPE rotates by them).
  if (pe != "ape") {
    const Tensor positions = Tensor::from_indices({3, 4, 5, 9, 10, 2, 6}, {7});
    CHECK(relative_error(cuda.forward(tokens.to(kCuda), dropout_gen, positions.to(kCuda)),
                         cpu.forward(tokens, dropout_gen, positions)) < kForwardTolerance);
  }

  // Greedy decoding with the KV cache: the same tokens.
  cpu.eval();
  cuda.eval();
  const Tensor prompt = tokens.narrow(1, 0, 3);
  const Tensor cpu_tokens = cpu.generate(prompt, 5, true);
  const Tensor cuda_tokens = cuda.generate(prompt.to(kCuda), 5, true);
  REQUIRE(cuda_tokens.device() == kCuda);
  CHECK(cuda_tokens.to_vector<int64_t>() == cpu_tokens.to_vector<int64_t>());
}

// A tiny ViT with position encoding `pe` (a factory name or "seqpe") on CUDA against the CPU.
inline void check_vit(const std::string& pe) {
  const models::VitConfig config = tiny_vit(pe);
  engine::Generator cpu_init(73), cuda_init(73), data(79);
  models::Vit cpu(config, cpu_init, make_vit_pe(config, cpu_init));
  models::Vit cuda(config, cuda_init, make_vit_pe(config, cuda_init));
  cuda.to_(kCuda);

  const Tensor images = Tensor::randn({3, 2, 8, 8}, data);
  const Tensor labels = Tensor::from_indices({2, 0, 1}, {3});
  engine::Generator dropout_gen(5);
  check_training(cpu, cuda, [&](models::Vit& model, bool on_cuda, Tensor& logits) {
    logits = model.forward(on_cuda ? images.to(kCuda) : images, dropout_gen);
    return ops::cross_entropy(logits, on_cuda ? labels.to(kCuda) : labels);
  });

  // Evaluation mode (SeqPE caches its table per grid) agrees too.
  cpu.eval();
  cuda.eval();
  engine::NoGradGuard no_grad;
  CHECK(relative_error(cuda.forward(images.to(kCuda), dropout_gen), cpu.forward(images, dropout_gen)) <
        kForwardTolerance);
}

}  // namespace model_checks
