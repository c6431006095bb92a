// SeqPE as a position encoding of the main model (docs/method.md: how the encoding enters the model, random shift, one encoder forward per step): the encoder (encoder.h) turns each
// position's digits into a vector e, and the model's hooks (models/position_encoding.h) apply it.
//
// Legend: B = batch, P = position blocks of a step (1, or 16 / 32 on random-shift steps), L = cells
// of a block, T = tokens of a forward (L, or 1 + grid cells with the ViT class token), C = model
// width, H = model heads, d = C / H head dim, O = D_out (encoder output width), H' = H with the
// multi-head split or 1 when one vector is shared by all heads, E = O / H' per-head PE width (= d),
// L_ly = model layers.
//
// How e enters the model (pe_apply_method, docs/method.md#apply-methods), per head:
//   input_add    x_i ← tok_i + e_i before the first layer (O = C)
//   attn_add     q_i ← q_i + pq_i,  k_j ← k_j + pk_j
//   attn_mul     q_i ← q_i ⊙ pq_i,  k_j ← k_j ⊙ pk_j
//   attn_scalar  s_ij = (q_i·k_j + α pq_i·pk_j) / sqrt(d): the PE term is added BEFORE the 1/sqrt(d)
//                scaling (docs/method.md#quirks, quirk 2). In training (grad mode on) the term is the attention op's score
//                bias: the logits α·pq·pkᵀ/sqrt(d), (P, H', T, T), computed once per forward and
//                shared by every sequence of a block and, with a single W_qk, by every layer (each
//                layer's gradient of it comes summed over the block's sequences, and the projection
//                runs its backward once). Under no grad (evaluation, KV-cached decoding, where the
//                keys cached must carry their own term and lengths may be long) it is attention over
//                [q; α·pq] and [k; pk] (Dk = 2d) with the scale 1/sqrt(d) left as is: memory linear
//                in T, no (T × T) tensor. docs/seqpe.md has the costs of both.
// [pq; pk] = W_qk e + b, (T, 2·O), reshaped to (T, 2, H', E) (docs/method.md#query-and-key-projections); W_qk is one Linear shared
// by all layers and applied once per forward ("single"), one per layer ("multi"), or none
// (pq = pk = e). ViT: the class token has no grid position, so a learned vector (1, O) is put in
// front of the patch PEs before W_qk (docs/method.md#class-token-of-the-vit).
//
// Where e comes from, per forward (prepare()):
//   training step   the caller runs encode_step() once per step (docs/method.md#one-encoder-forward-per-step): ONE encoder forward over
//                   main positions (P blocks) ++ contrastive pivots ++ candidates ++ distillation
//                   students, split back into groups; the main part (P, L, O) serves the next
//                   forward, whose batch is tiled over the blocks (sequence b uses block b mod P,
//                   docs/method.md#blocks-and-the-batch). auxiliary_losses() then gives L_ct and L_tr from the other groups.
//   no step plan    the encoder runs on this forward's distinct positions (1-D ids, or the
//                   row-major (h, w) grid).
//   evaluation      the embeddings of every position of the evaluation length (0..L_eval-1) or grid
//                   are computed once, without gradients, and reused by every batch and decoding
//                   step; the table is rebuilt when a forward needs a longer length or another grid,
//                   and dropped as soon as a forward runs in training mode.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "engine/rng.h"
#include "models/layers.h"
#include "models/position_encoding.h"
#include "seqpe/contrastive_sampler.h"
#include "seqpe/encoder.h"
#include "seqpe/main_position_sampler.h"
#include "seqpe/position_tokenizer.h"
#include "seqpe/transfer_sampler.h"

namespace seqpe {

enum class ApplyMethod { input_add, attn_add, attn_mul, attn_scalar };
enum class QkProjection { single, multi, none };

struct SeqPeConfig {
  SeqPeEncoderConfig encoder;       // its max_digits must match the tokenizer's
  int64_t pe_max_position = 20000;  // PE_MAX_POSITION: [0, 20000), or a 100 x 100 grid for 10000 in 2-D
  Padding padding = Padding::left;  // of the digit sequences (docs/method.md#one-dimensional-positions: right padding exists, unused)
  ApplyMethod apply = ApplyMethod::attn_scalar;
  QkProjection qk_projection = QkProjection::single;
  bool multi_head = true;           // use_pe_multi_head: O = C split per head; else O = d shared
  double scalar_scale = 1.0;        // α of attn_scalar (seqpe_scalar_scale)
  // The main model this PE serves.
  int64_t model_width = 768;
  int64_t model_heads = 12;
  int64_t model_layers = 12;
  bool class_token = false;         // ViT: a learned (1, O) PE for the class token
  // Images: timm's trunc_normal_ (absolute bounds ±2, as the reference) instead of the normal.
  bool truncated_normal_init = false;
  double init_std = 0.02;           // W_qk and the class-token PE
  // Auxiliary objectives (docs/method.md#contrastive-loss, docs/method.md#distillation-loss).
  double contrastive_weight = 0.1;  // λ_ct
  double transfer_weight = 0.1;     // λ_tr
  int64_t transfer_heads = 12;      // the distillation's per-head split (O / 64 in the paper)
  bool transfer_on_shifted_steps = false;  // QA fine-tuning: true, with the first shifted block as teacher
  uint64_t dropout_seed = 0;        // the encoder's residual-dropout stream

  // GPT-2 on WikiText-103 (docs/method.md#language-modelling): 5 digits, D_pe 768 / 12 heads / 2 layers, causal, dropout 0.1,
  // attn_scalar + single W_qk + multi-head, α = 1.
  static SeqPeConfig text_defaults();
  // ViT-S/16 on ImageNet (docs/method.md#image-classification): 2-D, 2 digits per coordinate, D_pe 384 / 6 heads, attn_mul +
  // per-layer W_qk + multi-head, learned class-token PE, truncated-normal init.
  static SeqPeConfig image_defaults();

  // O: the model width for input_add and multi-head attn_*, else the head dim.
  int64_t out_features() const;
};

// The encoder outputs of one training step, split into the groups that use them.
struct StepEncoding {
  Tensor main;        // (P, L, O) main-task positions; also the distillation teacher
  Tensor pivots;      // (B_ct, O); undefined without a contrastive batch
  Tensor candidates;  // (B_ct, K, O)
  Tensor students;    // (B_tr, n_t, O); undefined when the distillation loss is skipped this step
  bool shifted = false;
};

struct AuxiliaryLosses {
  Tensor contrastive;  // scalar L_ct, or undefined
  Tensor transfer;     // scalar L_tr, or undefined (shifted steps, no transfer batch)
  Tensor weighted;     // λ_ct·L_ct + λ_tr·L_tr, to add to the task loss; undefined when both are
};

class SeqPe : public models::PositionEncoding {
 public:
  SeqPe(const SeqPeConfig& config, engine::Generator& init_gen);

  std::string name() const override { return "seqpe"; }
  void prepare(const models::Positions& positions) override;
  Tensor input_embedding() override;
  void transform_qk(int layer, Tensor& q, Tensor& k) override;
  void attention_options(int layer, ops::AttentionOptions& options) override;

  // One encoder forward for a training step (docs/method.md#one-encoder-forward-per-step). `contrastive` may be null; `transfer` too,
  // and its students are left out on shifted steps unless transfer_on_shifted_steps. The main part
  // is kept for the next prepare(), which must then see batch B divisible by P and L tokens/cells.
  StepEncoding encode_step(const MainPositions& main, const ContrastiveBatch* contrastive,
                           const TransferBatch* transfer);
  // L_ct on the raw encoder outputs (before W_qk) and L_tr with the teacher gathered from this
  // step's main-task PE (block 0) at the transfer batch's teacher indices.
  AuxiliaryLosses auxiliary_losses(const StepEncoding& step, const ContrastiveBatch* contrastive,
                                   const TransferBatch* transfer) const;

  // Precomputes the evaluation table for positions 0..length-1 (1-D), e.g. before a decoding loop.
  void cache_eval_length(int64_t length);
  // Drops the evaluation table (call after changing parameters while in evaluation mode).
  void invalidate_cache();
  // Rows of the current evaluation table (0 when none); grid tables report h·w.
  int64_t cached_positions() const { return eval_table_.defined() ? eval_table_.size(0) : 0; }

  // The query and key PEs of `layer` for the last prepared forward, before α: (P, H', T, E). For
  // the position-signal diagnostic (position_signal.h), which reads what transform_qk would add.
  void position_qk(int layer, Tensor& pq, Tensor& pk) const;
  // Called by transform_qk with each layer's q and k, (B, H, T, d), before the PE touches them;
  // an empty function (the default) turns it off. Diagnostics only: it sees no gradients.
  using QkObserver = std::function<void(int layer, const Tensor& q, const Tensor& k)>;
  void set_qk_observer(QkObserver observer) { qk_observer_ = std::move(observer); }

  const SeqPeConfig& config() const { return config_; }
  SeqPeEncoder& encoder() { return *encoder_; }
  const PositionTokenizer& tokenizer() const { return tokenizer_; }
  engine::Generator& dropout_generator() { return dropout_gen_; }

 private:
  // Raw encoder output for a list of positions, (N, O).
  Tensor encode(const PositionList& positions);
  // (N, O) for the forward's positions without a step plan: distinct ids, or the grid; (1, N, O).
  Tensor encode_forward_positions(const models::Positions& positions);
  Tensor eval_positions(const models::Positions& positions);
  // (P, T, O) -> (P, H', T, E) query and key PEs of one layer's projection.
  void project(const Tensor& e, const models::Linear* projection, Tensor& pq, Tensor& pk) const;
  // (P, ...) -> a tensor that broadcasts against (B, ...): itself when P = 1, else tiled over the batch.
  Tensor tile_over_batch(const Tensor& x) const;
  // attn_scalar's term as whole logits: α·scale · pq·pkᵀ, (P, H', T, T), of layer `layer`'s projection.
  Tensor position_logits(int layer, double scale);
  // attn_scalar takes its term as the attention op's score bias (training) rather than widened q, k.
  bool scalar_term_as_bias() const;

  SeqPeConfig config_;
  PositionTokenizer tokenizer_;
  std::shared_ptr<SeqPeEncoder> encoder_;
  std::vector<std::shared_ptr<models::Linear>> qk_proj_;  // 1 (single), L_ly (multi) or 0 (none)
  Tensor* class_position_ = nullptr;                        // (1, O), ViT only
  engine::Generator dropout_gen_;
  QkObserver qk_observer_;

  // Per forward.
  Tensor step_main_;  // (P, L, O) from encode_step, consumed by the next prepare()
  Tensor e_;          // (P, T, O) the forward's PEs, class token first when present
  Tensor pq_, pk_;    // (P, H', T, E) for "single" and "none"
  Tensor logits_;     // (P, H', T, T) attn_scalar's score bias for "single" and "none", built by the first layer
  double logits_scale_ = 0.0;  // the attention scale it was built with
  int64_t blocks_ = 1;  // P
  int64_t batch_ = 1;   // B

  // Evaluation table: (L_eval, O) for 1-D, (h·w, O) for a grid; detached.
  Tensor eval_table_;
  int64_t eval_grid_h_ = 0, eval_grid_w_ = 0;
};

}  // namespace seqpe
