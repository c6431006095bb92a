// SeqPE as a position encoding (seqpe/seqpe_position_encoding.h): init, encode_step, the hooks,
// auxiliary losses, the evaluation cache.
#include "seqpe/seqpe_position_encoding.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/module_list.h"
#include "ops/elementwise.h"
#include "ops/indexing.h"
#include "ops/matmul.h"
#include "seqpe/contrastive_loss.h"
#include "seqpe/distillation_loss.h"

namespace seqpe {

namespace {

void fill_init(Tensor& t, double std, bool truncated, engine::Generator& gen) {
  if (truncated)
    engine::fill_random_(t, gen, {engine::RandomDistribution::truncated_normal, 0.0, std, -2.0, 2.0});
  else
    engine::fill_random_(t, gen, {engine::RandomDistribution::normal, 0.0, std});
}

void check_config(const SeqPeConfig& c, const PositionTokenizer& tokenizer) {
  ENGINE_CHECK(c.model_heads >= 1 && c.model_width % c.model_heads == 0, "SeqPe: model width ", c.model_width,
               " is not divisible by ", c.model_heads, " heads");
  ENGINE_CHECK(c.encoder.max_digits == tokenizer.max_digits(), "SeqPe: encoder.max_digits is ", c.encoder.max_digits,
               " but pe_max_position ", c.pe_max_position, " needs ", tokenizer.max_digits(),
               " digits per coordinate; set them consistently");
  ENGINE_CHECK(c.encoder.out_features == c.out_features(), "SeqPe: encoder.out_features is ", c.encoder.out_features,
               " but this apply method needs D_out = ", c.out_features(),
               c.apply == ApplyMethod::input_add || c.multi_head ? " (the model width)" : " (the head dim)");
  ENGINE_CHECK(c.transfer_heads >= 1 && c.out_features() % c.transfer_heads == 0, "SeqPe: D_out ",
               c.out_features(), " is not divisible by transfer_heads ", c.transfer_heads);
  ENGINE_CHECK(c.qk_projection != QkProjection::multi || c.model_layers >= 1,
               "SeqPe: the per-layer qk projection needs model_layers >= 1, got ", c.model_layers);
}

}  // namespace

SeqPeConfig SeqPeConfig::text_defaults() { return SeqPeConfig{}; }

SeqPeConfig SeqPeConfig::image_defaults() {
  SeqPeConfig c;
  c.encoder.dims = 2;
  c.encoder.max_digits = 2;
  c.encoder.channels = 384;
  c.encoder.heads = 6;
  c.encoder.out_features = 384;
  c.pe_max_position = 10000;
  c.apply = ApplyMethod::attn_mul;
  c.qk_projection = QkProjection::multi;
  c.model_width = 384;
  c.model_heads = 6;
  c.model_layers = 12;
  c.class_token = true;
  c.truncated_normal_init = true;
  c.transfer_heads = 6;
  return c;
}

int64_t SeqPeConfig::out_features() const {
  return apply == ApplyMethod::input_add || multi_head ? model_width : model_width / model_heads;
}

SeqPe::SeqPe(const SeqPeConfig& config, engine::Generator& init_gen)
    : config_(config),
      tokenizer_(PositionTokenizer::from_pe_max_position(config.pe_max_position, config.encoder.dims,
                                                         config.encoder.base, config.padding)),
      dropout_gen_(config.dropout_seed) {
  check_config(config, tokenizer_);
  const int64_t O = config.out_features();
  encoder_ = register_module("encoder", std::make_shared<SeqPeEncoder>(config.encoder, init_gen));
  // docs/method.md#the-position-encoder: the image encoder uses the text init with a truncated normal; every matrix, table and
  // the readout (all of rank 2) is redrawn, LayerNorms and biases keep 1 / 0.
  engine::NoGradGuard no_grad;  // in-place initialisation of parameters
  if (config.truncated_normal_init)
    for (auto& [name, param] : encoder_->named_parameters())
      if (param.dim() >= 2) fill_init(param, config.encoder.init_std, true, init_gen);

  // W_qk lives in the main model in the reference, so it takes the main model's init (docs/method.md#query-and-key-projections).
  auto make_projection = [&] {
    auto projection = std::make_shared<models::Linear>(O, 2 * O, true, config.init_std, init_gen, config.encoder.dtype);
    if (config.truncated_normal_init) fill_init(projection->weight(), config.init_std, true, init_gen);
    return projection;
  };
  if (config.apply != ApplyMethod::input_add) {
    if (config.qk_projection == QkProjection::single) {
      qk_proj_.push_back(register_module("qk_proj", make_projection()));
    } else if (config.qk_projection == QkProjection::multi) {
      // One per layer: qk_proj.0, qk_proj.1, ...
      auto list = register_module("qk_proj", std::make_shared<engine::ModuleList<models::Linear>>());
      for (int64_t layer = 0; layer < config.model_layers; ++layer) qk_proj_.push_back(list->append(make_projection()));
    }
  }
  if (config.class_token) {
    Tensor class_position = Tensor::empty({1, O}, config.encoder.dtype);
    fill_init(class_position, config.init_std, config.truncated_normal_init, init_gen);
    class_position_ = &register_parameter("class_position", class_position);
  }
}

Tensor SeqPe::encode(const PositionList& positions) {
  // (N, n·M) on the host: the encoder turns them into row indices there and moves only those.
  return encoder_->forward(tokenizer_.encode_batch(positions).digits, dropout_gen_);
}

Tensor SeqPe::encode_forward_positions(const models::Positions& positions) {
  if (!positions.ids.defined()) {
    ENGINE_CHECK(config_.encoder.dims == 2 && positions.grid_h > 0 && positions.grid_w > 0,
                 "SeqPe: a grid forward needs a 2-D SeqPE and a non-empty grid, got dims ", config_.encoder.dims,
                 " and grid ", positions.grid_h, " x ", positions.grid_w);
    PositionList grid(2);
    append_block(grid, std::vector<int64_t>{0, 0}, {positions.grid_h, positions.grid_w});
    return encode(grid);
  }
  ENGINE_CHECK(config_.encoder.dims == 1, "SeqPe: 1-D position ids given to a ", config_.encoder.dims, "-D SeqPE");
  const std::vector<int64_t> ids = positions.ids.to_vector<int64_t>();
  // Each distinct position is encoded once (docs/method.md#one-encoder-forward-per-step); repeated ids are gathered afterwards.
  PositionList distinct(1);
  std::unordered_map<int64_t, int64_t> row_of;
  std::vector<int64_t> rows;
  rows.reserve(ids.size());
  for (int64_t id : ids) {
    auto [it, inserted] = row_of.emplace(id, distinct.size());
    if (inserted) distinct.push_back(id);
    rows.push_back(it->second);
  }
  Tensor e = encode(distinct);
  if (distinct.size() == int64_t(ids.size())) return e;
  return ops::index_select(e, 0, Tensor::from_indices(rows, {int64_t(rows.size())}).to(e.device()));
}

void SeqPe::cache_eval_length(int64_t length) {
  ENGINE_CHECK(config_.encoder.dims == 1 && length >= 1, "SeqPe::cache_eval_length: needs a 1-D SeqPE and length >= 1, got dims ",
               config_.encoder.dims, " and length ", length);
  engine::NoGradGuard no_grad;
  PositionList all(1);
  all.reserve(length);
  for (int64_t p = 0; p < length; ++p) all.push_back(p);
  eval_table_ = encode(all).detach();
  eval_grid_h_ = eval_grid_w_ = 0;
}

void SeqPe::invalidate_cache() {
  eval_table_ = Tensor();
  eval_grid_h_ = eval_grid_w_ = 0;
}

Tensor SeqPe::eval_positions(const models::Positions& positions) {
  // A table cached before the model moved to another device is rebuilt there.
  if (eval_table_.defined() && eval_table_.device() != encoder_->parameters().front().device()) invalidate_cache();
  if (!positions.ids.defined()) {
    if (!eval_table_.defined() || eval_grid_h_ != positions.grid_h || eval_grid_w_ != positions.grid_w) {
      engine::NoGradGuard no_grad;
      eval_table_ = encode_forward_positions(positions).detach();
      eval_grid_h_ = positions.grid_h;
      eval_grid_w_ = positions.grid_w;
    }
    return eval_table_;
  }
  const std::vector<int64_t> ids = positions.ids.to_vector<int64_t>();
  ENGINE_CHECK(!ids.empty(), "SeqPe: a forward with no positions");
  const int64_t needed = *std::max_element(ids.begin(), ids.end()) + 1;
  const bool grid_table = eval_grid_h_ > 0;
  if (!eval_table_.defined() || grid_table || eval_table_.size(0) < needed) {
    // Grow at least twofold, so that a decoding loop that adds one position per step rebuilds the
    // table O(log L) times rather than every step (cache_eval_length avoids even that).
    const int64_t grown = eval_table_.defined() && !grid_table
                              ? std::min(2 * eval_table_.size(0), tokenizer_.capacity())
                              : 0;
    cache_eval_length(std::max(needed, grown));
  }
  bool is_prefix = true;
  for (size_t i = 0; i < ids.size() && is_prefix; ++i) is_prefix = ids[i] == int64_t(i);
  if (is_prefix) return eval_table_.narrow(0, 0, int64_t(ids.size()));
  return ops::index_select(eval_table_, 0, positions.ids.to(eval_table_.device()));
}

void SeqPe::prepare(const models::Positions& positions) {
  positions_ = positions;
  batch_ = positions.batch;
  ENGINE_CHECK(positions.class_token == config_.class_token, "SeqPe: the forward ",
               positions.class_token ? "has" : "has no", " class token but config.class_token is ",
               config_.class_token ? "true" : "false");
  const int64_t cells = positions.ids.defined() ? positions.ids.numel() : positions.grid_h * positions.grid_w;
  Tensor main;  // (P, L, O)
  if (step_main_.defined()) {
    main = step_main_;
    step_main_ = Tensor();
    ENGINE_CHECK(main.size(1) == cells && batch_ % main.size(0) == 0, "SeqPe: the step plan holds ", main.size(0),
                 " blocks of ", main.size(1), " positions but the forward has batch ", batch_, " and ", cells,
                 " positions; the batch must be a multiple of the blocks and the block the sequence");
  } else if (!is_training()) {
    main = eval_positions(positions).unsqueeze(0);
  } else {
    main = encode_forward_positions(positions).unsqueeze(0);
  }
  if (is_training()) invalidate_cache();
  blocks_ = main.size(0);
  e_ = main;
  if (class_position_) {
    const int64_t O = main.size(2);
    e_ = ops::concat({class_position_->unsqueeze(0).expand({blocks_, 1, O}), main}, 1);  // (P, T, O)
  }
  pq_ = pk_ = logits_ = Tensor();
  if (config_.apply != ApplyMethod::input_add && config_.qk_projection != QkProjection::multi)
    project(e_, qk_proj_.empty() ? nullptr : qk_proj_[0].get(), pq_, pk_);
}

void SeqPe::project(const Tensor& e, const models::Linear* projection, Tensor& pq, Tensor& pk) const {
  const int64_t P = e.size(0), T = e.size(1), O = e.size(2);
  const int64_t heads = config_.multi_head ? config_.model_heads : 1, E = O / heads;
  if (!projection) {  // "none": pq = pk = e
    pq = pk = e.reshape({P, T, heads, E}).permute({0, 2, 1, 3});
    return;
  }
  Tensor both = projection->forward(e).view({P, T, 2, heads, E});  // (P, T, 2·O) split per head
  pq = both.select(2, 0).permute({0, 2, 1, 3});                    // (P, H', T, E)
  pk = both.select(2, 1).permute({0, 2, 1, 3});
}

Tensor SeqPe::tile_over_batch(const Tensor& x) const {
  if (blocks_ == 1) return x;
  engine::Shape tiled = x.shape(), flat = x.shape();
  tiled.insert(tiled.begin(), batch_ / blocks_);  // (B/P, P, ...): sequence b reads block b mod P
  flat[0] = batch_;
  return x.unsqueeze(0).expand(tiled).reshape(flat);
}

Tensor SeqPe::input_embedding() {
  if (config_.apply != ApplyMethod::input_add) return Tensor();
  return blocks_ == 1 ? e_.select(0, 0) : tile_over_batch(e_);  // (T, C) or (B, T, C)
}

void SeqPe::position_qk(int layer, Tensor& pq, Tensor& pk) const {
  ENGINE_CHECK(config_.apply != ApplyMethod::input_add, "SeqPe::position_qk: input_add has no query and key PEs");
  ENGINE_CHECK(e_.defined(), "SeqPe::position_qk: no forward has been prepared");
  if (config_.qk_projection != QkProjection::multi) {
    pq = pq_;
    pk = pk_;
    return;
  }
  ENGINE_CHECK(layer >= 0 && layer < int64_t(qk_proj_.size()), "SeqPe: layer ", layer, " has no qk projection (",
               qk_proj_.size(), " configured)");
  project(e_, qk_proj_[size_t(layer)].get(), pq, pk);
}

bool SeqPe::scalar_term_as_bias() const {
  return config_.apply == ApplyMethod::attn_scalar && engine::grad_mode_enabled();
}

Tensor SeqPe::position_logits(int layer, double scale) {
  const bool shared = config_.qk_projection != QkProjection::multi;
  if (shared && logits_.defined() && logits_scale_ == scale) return logits_;
  Tensor pq, pk;
  position_qk(layer, pq, pk);
  // One (T, T) plane per block and head (or per block, shared by the heads, without the multi-head
  // split): the batch reads it through the op, sequence b from block b mod P.
  Tensor logits = ops::matmul(pq, pk, false, true) * (config_.scalar_scale * scale);  // (P, H', T, T)
  if (shared) {
    logits_ = logits;
    logits_scale_ = scale;
  }
  return logits;
}

void SeqPe::attention_options(int layer, ops::AttentionOptions& options) {
  if (!scalar_term_as_bias()) return;
  // s_ij = scale · q_i·k_j + α·scale · pq_i·pk_j: the same scores as the widened [q; α·pq]·[k; pk].
  const int64_t head_dim = config_.model_width / config_.model_heads;
  options.score_bias = position_logits(layer, options.scale != 0.0 ? options.scale : 1.0 / std::sqrt(double(head_dim)));
}

void SeqPe::transform_qk(int layer, Tensor& q, Tensor& k) {
  if (qk_observer_) qk_observer_(layer, q, k);
  if (config_.apply == ApplyMethod::input_add || scalar_term_as_bias()) return;
  Tensor pq, pk;
  position_qk(layer, pq, pk);
  ENGINE_CHECK(q.size(2) == pq.size(2) && q.size(3) == pq.size(3), "SeqPe: q ", q.describe(),
               " does not match the prepared position PEs ", pq.describe());
  pq = tile_over_batch(pq);  // (B or 1, H', T, d)
  pk = tile_over_batch(pk);
  switch (config_.apply) {
    case ApplyMethod::attn_add:
      q = q + pq;
      k = k + pk;
      break;
    case ApplyMethod::attn_mul:
      q = q * pq;
      k = k * pk;
      break;
    case ApplyMethod::attn_scalar:
      // [q; α·pq]·[k; pk] = q·k + α pq·pk, scaled by the block's unchanged 1/sqrt(d).
      if (config_.scalar_scale != 1.0) pq = pq * config_.scalar_scale;
      q = ops::concat({q, pq.expand(q.shape())}, 3);  // (B, H, T, 2d)
      k = ops::concat({k, pk.expand(k.shape())}, 3);
      break;
    case ApplyMethod::input_add:
      break;
  }
}

StepEncoding SeqPe::encode_step(const MainPositions& main, const ContrastiveBatch* contrastive,
                                const TransferBatch* transfer) {
  const int64_t P = main.num_blocks(), N_main = main.positions.size();
  ENGINE_CHECK(P >= 1 && N_main % P == 0, "SeqPe::encode_step: ", N_main, " main positions do not split into ", P,
               " blocks");
  const bool with_transfer = transfer && (!main.shifted || config_.transfer_on_shifted_steps);
  // Every position the step needs, in one list: main ++ pivots ++ candidates ++ students.
  PositionList all = main.positions;
  std::vector<int64_t> sizes = {N_main};
  auto append = [&](const PositionList& group) {
    ENGINE_CHECK(group.dims() == all.dims(), "SeqPe::encode_step: ", group.dims(), "-D positions in a ", all.dims(),
                 "-D step");
    all.reserve(all.size() + group.size());
    for (int64_t i = 0; i < group.size(); ++i) all.push_back(group[i]);
    sizes.push_back(group.size());
  };
  if (contrastive) {
    append(contrastive->pivots);
    append(contrastive->candidates);
  }
  if (with_transfer) append(transfer->students);

  const std::vector<Tensor> pieces = ops::split(encode(all), sizes, 0);  // one encoder forward
  const int64_t O = config_.out_features();
  StepEncoding step;
  step.shifted = main.shifted;
  step.main = pieces[0].view({P, N_main / P, O});
  size_t next = 1;
  if (contrastive) {
    const int64_t B = contrastive->pivots.size();
    step.pivots = pieces[next++];
    step.candidates = pieces[next++].view({B, contrastive->candidates.size() / B, O});
  }
  if (with_transfer) {
    const int64_t B = transfer->teacher_indices.size(0);
    step.students = pieces[next++].view({B, transfer->students.size() / B, O});
  }
  step_main_ = step.main;
  return step;
}

AuxiliaryLosses SeqPe::auxiliary_losses(const StepEncoding& step, const ContrastiveBatch* contrastive,
                                        const TransferBatch* transfer) const {
  AuxiliaryLosses losses;
  if (contrastive && step.pivots.defined()) {
    const Tensor labels = contrastive->labels.to(step.pivots.device());
    losses.contrastive = contrastive_loss(step.pivots, step.candidates, labels);
    losses.weighted = losses.contrastive * config_.contrastive_weight;
  }
  if (transfer && step.students.defined()) {
    // Teacher: this step's main-task PE of block 0 (the training block, or the first shifted block
    // in QA) at the sampled cells; distillation_loss detaches it.
    const Tensor& indices = transfer->teacher_indices;  // (B_tr, n_t)
    const int64_t O = step.main.size(2);
    Tensor teacher = ops::index_select(step.main.select(0, 0), 0, indices.flatten().to(step.main.device()))
                         .view({indices.size(0), indices.size(1), O});
    losses.transfer = distillation_loss(teacher, step.students, config_.transfer_heads);
    Tensor weighted = losses.transfer * config_.transfer_weight;
    losses.weighted = losses.weighted.defined() ? losses.weighted + weighted : weighted;
  }
  return losses;
}

}  // namespace seqpe
