// SeqPE through the models' hooks (docs/method.md: how the encoding enters the model, random shift, one encoder forward per step): each apply method against a naive computation,
// the qk projections' parameters, batch tiling over random-shift blocks, the evaluation cache, the
// single encoder forward per step, tiny GPT / ViT models that memorise a batch, and a gradcheck
// through a whole GPT.
#include <doctest/doctest.h>

#include <cmath>
#include <numeric>
#include <set>
#include <string>

#include "engine/autograd.h"
#include "engine/gradcheck.h"
#include "engine/optim/adamw.h"
#include "engine/rng.h"
#include "models/gpt.h"
#include "models/vit.h"
#include "ops/attention.h"
#include "ops/cross_entropy.h"
#include "ops/elementwise.h"
#include "seqpe/distillation_loss.h"
#include "seqpe/contrastive_loss.h"
#include "seqpe/seqpe_position_encoding.h"

using engine::Dtype;
using engine::Tensor;
using seqpe::ApplyMethod;
using seqpe::QkProjection;

namespace {

// Model width 8 with 2 heads (d = 4), 2 layers; encoder width 8, 1 block; positions < 100 (1-D, 2
// digits) or a 10 x 10 grid (2-D, 1 digit per coordinate).
seqpe::SeqPeConfig tiny_config(ApplyMethod apply, QkProjection projection, bool multi_head = true, int64_t dims = 1,
                               Dtype dtype = Dtype::f64) {
  seqpe::SeqPeConfig c;
  c.apply = apply;
  c.qk_projection = projection;
  c.multi_head = multi_head;
  c.pe_max_position = 100;
  c.model_width = 8;
  c.model_heads = 2;
  c.model_layers = 2;
  c.transfer_heads = 2;
  c.encoder.dims = dims;
  c.encoder.max_digits = dims == 1 ? 2 : 1;
  c.encoder.channels = 8;
  c.encoder.heads = 2;
  c.encoder.layers = 1;
  c.encoder.residual_dropout = 0.0;
  c.encoder.dtype = dtype;
  c.encoder.out_features = c.out_features();
  return c;
}

models::Positions ids_positions(const std::vector<int64_t>& ids, int64_t batch) {
  models::Positions p;
  p.ids = Tensor::from_indices(ids, {int64_t(ids.size())});
  p.batch = batch;
  return p;
}

seqpe::PositionList list_of(const std::vector<int64_t>& ids) {
  seqpe::PositionList list(1);
  for (int64_t id : ids) list.push_back(id);
  return list;
}

// The raw encoder output for these 1-D positions, (N, O).
Tensor encoder_output(seqpe::SeqPe& pe, const seqpe::PositionList& positions) {
  engine::Generator unused(0);
  return pe.encoder().forward(pe.tokenizer().encode_batch(positions).digits, unused);
}

Tensor parameter(const engine::Module& m, const std::string& name) {
  for (const auto& [n, t] : m.named_parameters())
    if (n == name) return t;
  FAIL("no parameter " << name);
  return Tensor();
}

// [pq; pk] = W e + b for one position: returns the 2·O values.
std::vector<double> project_row(const std::vector<double>& e, const Tensor& weight, const Tensor& bias) {
  const int64_t out = weight.size(0), in = weight.size(1);
  const auto w = weight.to_vector<double>(), b = bias.to_vector<double>();
  std::vector<double> y(static_cast<size_t>(out));
  for (int64_t o = 0; o < out; ++o) {
    double s = b[size_t(o)];
    for (int64_t i = 0; i < in; ++i) s += w[size_t(o * in + i)] * e[size_t(i)];
    y[size_t(o)] = s;
  }
  return y;
}

std::vector<double> row(const Tensor& t, int64_t i) { return t.select(0, i).contiguous().to_vector<double>(); }

void check_close(const std::vector<double>& a, const std::vector<double>& b, double tol) {
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) REQUIRE(a[i] == doctest::Approx(b[i]).epsilon(tol).scale(1.0));
}

std::set<std::string> parameter_names(const engine::Module& m) {
  std::set<std::string> names;
  for (const auto& [name, t] : m.named_parameters()) names.insert(name);
  return names;
}

}  // namespace

TEST_CASE("seqpe config: the reference's text and image defaults") {
  const auto text = seqpe::SeqPeConfig::text_defaults();
  CHECK(text.apply == ApplyMethod::attn_scalar);
  CHECK(text.qk_projection == QkProjection::single);
  CHECK(text.multi_head);
  CHECK(text.scalar_scale == 1.0);
  CHECK(text.encoder.max_digits == 5);
  CHECK(text.encoder.channels == 768);
  CHECK(text.encoder.layers == 2);
  CHECK(text.out_features() == 768);
  CHECK(text.contrastive_weight == 0.1);
  CHECK(text.transfer_weight == 0.1);
  CHECK_FALSE(text.transfer_on_shifted_steps);
  const auto image = seqpe::SeqPeConfig::image_defaults();
  CHECK(image.apply == ApplyMethod::attn_mul);
  CHECK(image.qk_projection == QkProjection::multi);
  CHECK(image.encoder.dims == 2);
  CHECK(image.encoder.max_digits == 2);
  CHECK(image.out_features() == 384);
  CHECK(image.class_token);
  CHECK(image.truncated_normal_init);
  CHECK(seqpe::PositionTokenizer::from_pe_max_position(image.pe_max_position, 2).max_digits() == 2);
}

TEST_CASE("seqpe: projection parameters for single, multi and none; the class-token PE") {
  engine::Generator gen(1);
  seqpe::SeqPe single(tiny_config(ApplyMethod::attn_scalar, QkProjection::single), gen);
  seqpe::SeqPe multi(tiny_config(ApplyMethod::attn_scalar, QkProjection::multi), gen);
  seqpe::SeqPe none(tiny_config(ApplyMethod::attn_scalar, QkProjection::none), gen);
  seqpe::SeqPe added(tiny_config(ApplyMethod::input_add, QkProjection::single), gen);
  const int64_t O = 8, per_projection = 2 * O * O + 2 * O;
  const int64_t encoder = none.encoder().parameter_count();
  CHECK(none.parameter_count() == encoder);
  CHECK(added.parameter_count() == encoder);  // input_add has no W_qk
  CHECK(single.parameter_count() == encoder + per_projection);
  CHECK(multi.parameter_count() == encoder + 2 * per_projection);
  CHECK(parameter(single, "qk_proj.weight").shape() == engine::Shape{2 * O, O});
  CHECK(parameter_names(single).count("qk_proj.bias"));
  CHECK(parameter_names(multi).count("qk_proj.0.weight"));
  CHECK(parameter_names(multi).count("qk_proj.1.bias"));
  CHECK(parameter_names(single).count("encoder.readout"));
  // W_qk starts N(0, 0.02) with zero bias.
  CHECK(parameter(single, "qk_proj.bias").to_vector<double>() == std::vector<double>(size_t(2 * O), 0.0));

  auto image = tiny_config(ApplyMethod::attn_mul, QkProjection::multi, true, 2);
  image.class_token = true;
  image.truncated_normal_init = true;
  seqpe::SeqPe vit_pe(image, gen);
  CHECK(parameter(vit_pe, "class_position").shape() == engine::Shape{1, O});
  // timm's trunc_normal_(std 0.02) with its absolute bounds ±2: a std of 0.02 (512 draws: ~3% error).
  const auto w = parameter(vit_pe, "qk_proj.0.weight").to_vector<double>();
  double sq = 0;
  for (double x : w) sq += x * x;
  CHECK(std::sqrt(sq / double(w.size())) == doctest::Approx(0.02).epsilon(0.15));

  auto shared = tiny_config(ApplyMethod::attn_add, QkProjection::single, false);
  CHECK(shared.out_features() == 4);  // one head-dim vector shared by the heads
  seqpe::SeqPe shared_pe(shared, gen);
  CHECK(parameter(shared_pe, "qk_proj.weight").shape() == engine::Shape{8, 4});
}

TEST_CASE("seqpe: configuration errors name the field at fault") {
  engine::Generator gen(2);
  auto digits = tiny_config(ApplyMethod::attn_add, QkProjection::single);
  digits.encoder.max_digits = 3;
  CHECK_THROWS_WITH_AS(seqpe::SeqPe(digits, gen), doctest::Contains("max_digits"), engine::Error);
  auto width = tiny_config(ApplyMethod::attn_add, QkProjection::single);
  width.encoder.out_features = 4;
  CHECK_THROWS_WITH_AS(seqpe::SeqPe(width, gen), doctest::Contains("out_features"), engine::Error);

  seqpe::SeqPe pe(tiny_config(ApplyMethod::attn_add, QkProjection::single), gen);
  models::Positions grid;
  grid.grid_h = grid.grid_w = 2;
  grid.class_token = true;
  CHECK_THROWS_WITH_AS(pe.prepare(grid), doctest::Contains("class token"), engine::Error);
}

TEST_CASE("seqpe attn_scalar: (q·k + α pq·pk) / sqrt(d) softmax, as a score bias and as attention over [q; α pq] "
          "and [k; pk]") {
  engine::Generator gen(3);
  auto config = tiny_config(ApplyMethod::attn_scalar, QkProjection::single);
  config.scalar_scale = 0.7;
  seqpe::SeqPe pe(config, gen);
  const std::vector<int64_t> ids = {0, 7, 42};
  const int64_t B = 2, H = 2, T = 3, d = 4;
  Tensor q = Tensor::randn({B, H, T, d}, gen, Dtype::f64), k = Tensor::randn({B, H, T, d}, gen, Dtype::f64);
  Tensor v = Tensor::randn({B, H, T, d}, gen, Dtype::f64);
  pe.prepare(ids_positions(ids, B));
  // The hooks as the transformer block calls them: in training (grad mode on) the term is a score
  // bias (P, H, T, T) and q, k keep their width; under no grad q and k are widened to 2d.
  const auto attend = [&](int64_t expected_width, bool expects_bias) {
    Tensor q2 = q, k2 = k;
    ops::AttentionOptions options;
    options.causal = true;
    options.scale = 1.0 / std::sqrt(double(d));  // what the block sets before the hooks
    pe.transform_qk(1, q2, k2);
    pe.attention_options(1, options);
    CHECK(q2.shape() == engine::Shape{B, H, T, expected_width});
    CHECK(options.score_bias.defined() == expects_bias);
    return ops::attention(q2, k2, v, options).to_vector<double>();
  };
  const auto out = attend(d, true);
  std::vector<double> widened;
  {
    engine::NoGradGuard no_grad;
    widened = attend(2 * d, false);
  }

  const Tensor e = encoder_output(pe, list_of(ids));
  std::vector<std::vector<double>> pqk;
  for (int64_t t = 0; t < T; ++t)
    pqk.push_back(project_row(row(e, t), parameter(pe, "qk_proj.weight"), parameter(pe, "qk_proj.bias")));
  const auto qv = q.to_vector<double>(), kv = k.to_vector<double>(), vv = v.to_vector<double>();
  auto at = [&](int64_t b, int64_t h, int64_t t, int64_t c) { return size_t(((b * H + h) * T + t) * d + c); };
  std::vector<double> naive(out.size());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < T; ++i) {
        std::vector<double> s(size_t(i + 1));
        double max = -1e300, z = 0;
        for (int64_t j = 0; j <= i; ++j) {
          double dot = 0, pe_dot = 0;
          for (int64_t c = 0; c < d; ++c) {
            dot += qv[at(b, h, i, c)] * kv[at(b, h, j, c)];
            // [pq; pk] is (2, H, d): pq of head h at h·d + c, pk at O + h·d + c.
            pe_dot += pqk[size_t(i)][size_t(h * d + c)] * pqk[size_t(j)][size_t(8 + h * d + c)];
          }
          s[size_t(j)] = (dot + 0.7 * pe_dot) / std::sqrt(double(d));
          max = std::max(max, s[size_t(j)]);
        }
        for (auto& x : s) z += (x = std::exp(x - max));
        for (int64_t c = 0; c < d; ++c) {
          double acc = 0;
          for (int64_t j = 0; j <= i; ++j) acc += s[size_t(j)] / z * vv[at(b, h, j, c)];
          naive[at(b, h, i, c)] = acc;
        }
      }
  check_close(out, naive, 1e-12);
  check_close(widened, naive, 1e-12);
}

TEST_CASE("seqpe attn_add / attn_mul: q and k plus / times the layer's own pq and pk") {
  for (ApplyMethod apply : {ApplyMethod::attn_add, ApplyMethod::attn_mul}) {
    CAPTURE(int(apply));
    engine::Generator gen(4);
    seqpe::SeqPe pe(tiny_config(apply, QkProjection::multi), gen);
    const std::vector<int64_t> ids = {5, 6, 99};
    const int64_t B = 2, H = 2, T = 3, d = 4;
    Tensor q = Tensor::randn({B, H, T, d}, gen, Dtype::f64), k = Tensor::randn({B, H, T, d}, gen, Dtype::f64);
    pe.prepare(ids_positions(ids, B));
    Tensor q2 = q, k2 = k;
    pe.transform_qk(1, q2, k2);  // layer 1 uses qk_proj.1
    const Tensor e = encoder_output(pe, list_of(ids));
    const auto qv = q.to_vector<double>(), kv = k.to_vector<double>();
    const auto qo = q2.contiguous().to_vector<double>(), ko = k2.contiguous().to_vector<double>();
    for (int64_t t = 0; t < T; ++t) {
      const auto pqk = project_row(row(e, t), parameter(pe, "qk_proj.1.weight"), parameter(pe, "qk_proj.1.bias"));
      for (int64_t b = 0; b < B; ++b)
        for (int64_t h = 0; h < H; ++h)
          for (int64_t c = 0; c < d; ++c) {
            const size_t i = size_t(((b * H + h) * T + t) * d + c);
            const double pq = pqk[size_t(h * d + c)], pk = pqk[size_t(8 + h * d + c)];
            const double want_q = apply == ApplyMethod::attn_add ? qv[i] + pq : qv[i] * pq;
            const double want_k = apply == ApplyMethod::attn_add ? kv[i] + pk : kv[i] * pk;
            REQUIRE(qo[i] == doctest::Approx(want_q).epsilon(1e-12));
            REQUIRE(ko[i] == doctest::Approx(want_k).epsilon(1e-12));
          }
    }
  }
}

TEST_CASE("seqpe: 'none' uses pq = pk = e; without the multi-head split one vector serves every head") {
  engine::Generator gen(5);
  seqpe::SeqPe pe(tiny_config(ApplyMethod::attn_add, QkProjection::none, false), gen);  // O = d = 4
  const std::vector<int64_t> ids = {3, 1};
  const int64_t B = 1, H = 2, T = 2, d = 4;
  Tensor q = Tensor::randn({B, H, T, d}, gen, Dtype::f64), k = Tensor::randn({B, H, T, d}, gen, Dtype::f64);
  pe.prepare(ids_positions(ids, B));
  Tensor q2 = q, k2 = k;
  pe.transform_qk(0, q2, k2);
  const Tensor e = encoder_output(pe, list_of(ids));  // (T, 4)
  for (int64_t h = 0; h < H; ++h) {
    check_close((q2.select(1, h) - q.select(1, h)).contiguous().to_vector<double>(),
                e.unsqueeze(0).contiguous().to_vector<double>(), 1e-12);
    check_close((k2.select(1, h) - k.select(1, h)).contiguous().to_vector<double>(),
                e.unsqueeze(0).contiguous().to_vector<double>(), 1e-12);
  }
}

TEST_CASE("seqpe input_add: the embedding is e, one row per position; repeated ids are encoded once") {
  engine::Generator gen(6);
  seqpe::SeqPe pe(tiny_config(ApplyMethod::input_add, QkProjection::none), gen);
  const std::vector<int64_t> ids = {4, 9, 4, 0};
  pe.prepare(ids_positions(ids, 3));
  Tensor added = pe.input_embedding();
  CHECK(added.shape() == engine::Shape{4, 8});
  check_close(added.to_vector<double>(), encoder_output(pe, list_of(ids)).to_vector<double>(), 1e-12);
  Tensor q = Tensor::randn({3, 2, 4, 4}, gen, Dtype::f64), k = q;
  pe.transform_qk(0, q, k);
  CHECK(q.same(k));  // no attention change
}

// "Equal" is to f64 rounding (1e-12 relative), not bitwise: Eigen picks its GEMM kernel and blocking
// from the matrix sizes, the buffers' alignment and the thread count, so two forwards of the same
// rows may round differently (ops/cpu/gemm.cpp). Reuse of one table is checked exactly.
TEST_CASE("seqpe evaluation cache: built once, reused, equal to a fresh forward, dropped by training") {
  engine::Generator gen(7);
  seqpe::SeqPe pe(tiny_config(ApplyMethod::input_add, QkProjection::none), gen);
  std::vector<int64_t> first8(8), first12(12);
  std::iota(first8.begin(), first8.end(), 0);
  std::iota(first12.begin(), first12.end(), 0);

  pe.prepare(ids_positions(first8, 2));  // training mode: a fresh forward
  const auto fresh8 = pe.input_embedding().to_vector<double>();
  pe.eval();
  pe.prepare(ids_positions(first8, 2));
  CHECK(pe.cached_positions() == 8);
  const Tensor cached = pe.input_embedding();
  check_close(cached.to_vector<double>(), fresh8, 1e-12);
  CHECK_FALSE(cached.requires_grad());
  pe.prepare(ids_positions(first8, 5));  // another batch: the same table
  CHECK(pe.input_embedding().storage() == cached.storage());
  pe.prepare(ids_positions({6, 2}, 1));  // a decoding-style gather from the table
  CHECK(row(pe.input_embedding(), 0) == row(cached, 6));
  pe.prepare(ids_positions(first12, 1));  // longer: rebuilt, at least doubled
  CHECK(pe.cached_positions() == 16);
  const auto cached12 = pe.input_embedding().to_vector<double>();
  pe.train();
  pe.prepare(ids_positions(first12, 1));
  CHECK(pe.cached_positions() == 0);
  check_close(pe.input_embedding().to_vector<double>(), cached12, 1e-12);

  // Grids: keyed by (h, w), class-token PE in front.
  auto image = tiny_config(ApplyMethod::input_add, QkProjection::none, true, 2);
  image.class_token = true;
  seqpe::SeqPe grid_pe(image, gen);
  models::Positions grid;
  grid.class_token = true;
  grid.grid_h = 3;
  grid.grid_w = 2;
  grid_pe.prepare(grid);
  const auto fresh_grid = grid_pe.input_embedding().to_vector<double>();
  grid_pe.eval();
  grid_pe.prepare(grid);
  CHECK(grid_pe.cached_positions() == 6);
  check_close(grid_pe.input_embedding().to_vector<double>(), fresh_grid, 1e-12);
  CHECK(row(grid_pe.input_embedding(), 0) == parameter(grid_pe, "class_position").to_vector<double>());
  grid.grid_h = 2;
  grid_pe.prepare(grid);
  CHECK(grid_pe.cached_positions() == 4);
  // Cell (1, 1) of a 2 x 2 grid is row 1 + 3 (class token first).
  seqpe::PositionList cell(2);
  cell.push_back(1, 1);
  engine::Generator unused(0);
  check_close(row(grid_pe.input_embedding(), 4),
              row(grid_pe.encoder().forward(grid_pe.tokenizer().encode_batch(cell).digits, unused), 0), 1e-12);
}

TEST_CASE("seqpe encode_step: one encoder forward split into groups equals separate forwards") {
  engine::Generator gen(8);
  seqpe::SeqPe pe(tiny_config(ApplyMethod::input_add, QkProjection::none), gen);

  seqpe::MainPositionSamplerConfig main_config;
  main_config.pe_max_position = 100;
  main_config.block_shape = {6};
  main_config.shift_rate = 1.0;
  main_config.shift_downsample = 10;
  main_config.blocks_per_shifted_step = 2;
  main_config.restart_offset_range = 2;
  seqpe::MainPositionSampler main_sampler(main_config, 1);
  seqpe::ContrastiveSamplerConfig ct_config;
  ct_config.pe_max_position = 100;
  ct_config.batch_size = 3;
  ct_config.num_candidates = 4;
  ct_config.distributional_range = 16;
  seqpe::ContrastiveSampler ct_sampler(ct_config, 2);
  seqpe::TransferSamplerConfig tr_config;
  tr_config.pe_max_position = 100;
  tr_config.block_shape = {6};
  tr_config.batch_size = 2;
  tr_config.num_indices = 3;
  seqpe::TransferSampler tr_sampler(tr_config, 3);

  const auto ct = ct_sampler.next();
  const auto tr = tr_sampler.next();
  SUBCASE("shifted step: P = 2 blocks tile the batch; no distillation") {
    const auto main = main_sampler.next();
    REQUIRE(main.shifted);
    const auto step = pe.encode_step(main, &ct, &tr);
    CHECK(step.main.shape() == engine::Shape{2, 6, 8});
    CHECK_FALSE(step.students.defined());
    check_close(step.main.contiguous().to_vector<double>(),
                encoder_output(pe, main.positions).to_vector<double>(), 1e-12);
    check_close(step.pivots.to_vector<double>(), encoder_output(pe, ct.pivots).to_vector<double>(), 1e-12);
    check_close(step.candidates.contiguous().to_vector<double>(),
                encoder_output(pe, ct.candidates).to_vector<double>(), 1e-12);
    const auto losses = pe.auxiliary_losses(step, &ct, &tr);
    CHECK_FALSE(losses.transfer.defined());
    CHECK(losses.weighted.item() == doctest::Approx(0.1 * losses.contrastive.item()).epsilon(1e-12));
    CHECK(losses.contrastive.item() ==
          doctest::Approx(seqpe::contrastive_loss(step.pivots, step.candidates, ct.labels).item()).epsilon(1e-12));

    // The next forward (batch 4) reads block b mod 2 for sequence b.
    pe.prepare(ids_positions({0, 1, 2, 3, 4, 5}, 4));
    const Tensor added = pe.input_embedding();
    CHECK(added.shape() == engine::Shape{4, 6, 8});
    for (int64_t b = 0; b < 4; ++b) CHECK(row(added, b) == row(step.main, b % 2));
    // The plan serves one forward; a batch that the blocks do not divide is an error.
    pe.encode_step(main, nullptr, nullptr);
    CHECK_THROWS_WITH_AS(pe.prepare(ids_positions({0, 1, 2, 3, 4, 5}, 3)), doctest::Contains("multiple of the blocks"),
                         engine::Error);
  }
  SUBCASE("unshifted step: students encoded; the teacher is the main PE at the sampled cells") {
    const auto main = main_sampler.default_positions();
    const auto step = pe.encode_step(main, &ct, &tr);
    REQUIRE(step.students.defined());
    CHECK(step.students.shape() == engine::Shape{2, 3, 8});
    check_close(step.students.contiguous().to_vector<double>(),
                encoder_output(pe, tr.students).to_vector<double>(), 1e-12);
    const auto cells = tr.teacher_indices.to_vector<int64_t>();
    const Tensor fresh_main = encoder_output(pe, main.positions);
    std::vector<double> teacher;
    for (int64_t c : cells)
      for (double x : row(fresh_main, c)) teacher.push_back(x);
    const Tensor expected = seqpe::distillation_loss(Tensor::from_vector(teacher, {2, 3, 8}, Dtype::f64),
                                                     step.students, 2);
    const auto losses = pe.auxiliary_losses(step, &ct, &tr);
    CHECK(losses.transfer.item() == doctest::Approx(expected.item()).epsilon(1e-12));
    CHECK(losses.weighted.item() ==
          doctest::Approx(0.1 * losses.contrastive.item() + 0.1 * losses.transfer.item()).epsilon(1e-12));
  }
}

TEST_CASE("seqpe: QA keeps the distillation on shifted steps, teacher = first shifted block") {
  engine::Generator gen(9);
  auto config = tiny_config(ApplyMethod::attn_scalar, QkProjection::single);
  config.transfer_on_shifted_steps = true;
  seqpe::SeqPe pe(config, gen);
  seqpe::MainPositions main;
  main.shifted = true;
  main.block_starts = list_of({10, 50});
  main.positions = list_of({10, 11, 12, 50, 51, 52});
  seqpe::TransferBatch tr;
  tr.offsets = list_of({20});
  tr.teacher_indices = Tensor::from_indices({2, 0}, {1, 2});
  tr.students = list_of({22, 20});
  const auto step = pe.encode_step(main, nullptr, &tr);
  const auto losses = pe.auxiliary_losses(step, nullptr, &tr);
  REQUIRE(losses.transfer.defined());
  CHECK_FALSE(losses.contrastive.defined());
  const Tensor teacher = encoder_output(pe, list_of({12, 10})).unsqueeze(0);
  CHECK(losses.transfer.item() ==
        doctest::Approx(seqpe::distillation_loss(teacher, step.students, 2).item()).epsilon(1e-12));
}

TEST_CASE("a tiny GPT with SeqPE attn_scalar + single W_qk memorises one batch") {
  engine::Generator gen(10);
  models::GptConfig config;
  config.vocab_size = 23;
  config.context = 16;
  config.layers = 2;
  config.channels = 16;
  config.heads = 2;
  config.embedding_dropout = config.residual_dropout = config.attention_dropout = 0.0;
  config.position_encoding = "seqpe";
  auto pe_config = tiny_config(ApplyMethod::attn_scalar, QkProjection::single, true, 1, Dtype::f32);
  pe_config.model_width = 16;
  pe_config.encoder.out_features = 16;
  auto pe = std::make_shared<seqpe::SeqPe>(pe_config, gen);
  models::Gpt model(config, gen, pe);
  CHECK(parameter_names(model).count("pe.qk_proj.weight"));
  std::vector<int64_t> ids(4 * 17);
  for (auto& id : ids) id = int64_t(gen.randint(23));
  Tensor data = Tensor::from_indices(ids, {4, 17});
  Tensor inputs = data.narrow(1, 0, 16).contiguous(), targets = data.narrow(1, 1, 16).contiguous();
  engine::optim::AdamW optimizer({engine::optim::ParamGroup{model.named_parameters(), 1e-2, 0.0}});
  double first = 0, last = 0;
  for (int step = 0; step < 300 && (step == 0 || last >= 0.01 * first); ++step) {
    optimizer.zero_grad();
    Tensor loss = ops::cross_entropy(model.forward(inputs, gen), targets);
    loss.backward();
    optimizer.step();
    if (step == 0) first = loss.item();
    last = loss.item();
  }
  MESSAGE("GPT + SeqPE loss " << first << " -> " << last);
  CHECK(last < 0.01 * first);
  CHECK(parameter(model, "pe.encoder.digit_embedding.weight").grad().defined());
}

TEST_CASE("a tiny ViT with 2-D SeqPE attn_mul + per-layer W_qk memorises one batch (one encoder forward per step)") {
  engine::Generator gen(11);
  models::VitConfig config;
  config.image_size = 12;
  config.patch = 4;  // a 3 x 3 grid
  config.in_channels = 1;
  config.width = 16;
  config.depth = 2;
  config.heads = 2;
  config.num_classes = 5;
  config.position_encoding = "seqpe";
  auto pe_config = tiny_config(ApplyMethod::attn_mul, QkProjection::multi, true, 2, Dtype::f32);
  pe_config.model_width = 16;
  pe_config.encoder.out_features = 16;
  pe_config.class_token = true;
  pe_config.truncated_normal_init = true;
  auto pe = std::make_shared<seqpe::SeqPe>(pe_config, gen);
  models::Vit model(config, gen, pe);

  seqpe::ContrastiveSamplerConfig ct_config = seqpe::ContrastiveSamplerConfig::image_defaults();
  ct_config.pe_max_position = 100;
  ct_config.batch_size = 4;
  ct_config.num_candidates = 6;
  ct_config.distributional_range = 9;
  seqpe::ContrastiveSampler ct_sampler(ct_config, 1);
  seqpe::TransferSamplerConfig tr_config = seqpe::TransferSamplerConfig::image_defaults();
  tr_config.pe_max_position = 100;
  tr_config.block_shape = {3, 3};
  tr_config.batch_size = 2;
  tr_config.num_indices = 4;
  seqpe::TransferSampler tr_sampler(tr_config, 2);
  seqpe::MainPositionSamplerConfig main_config = seqpe::MainPositionSamplerConfig::image_defaults();
  main_config.pe_max_position = 100;
  main_config.block_shape = {3, 3};
  main_config.use_random_shift = false;
  seqpe::MainPositionSampler main_sampler(main_config, 3);

  Tensor images = Tensor::randn({6, 1, 12, 12}, gen);
  std::vector<int64_t> labels(6);
  for (auto& y : labels) y = int64_t(gen.randint(5));
  Tensor targets = Tensor::from_indices(labels, {6});
  engine::optim::AdamW optimizer({engine::optim::ParamGroup{model.named_parameters(), 1e-2, 0.0}});
  double first = 0, last = 0;
  for (int step = 0; step < 300 && (step == 0 || last >= 0.01 * first); ++step) {
    optimizer.zero_grad();
    const auto ct = ct_sampler.next();
    const auto tr = tr_sampler.next();
    const auto encoded = pe->encode_step(main_sampler.next(), &ct, &tr);
    Tensor task = ops::cross_entropy(model.forward(images, gen), targets);
    Tensor loss = task + pe->auxiliary_losses(encoded, &ct, &tr).weighted;
    loss.backward();
    optimizer.step();
    if (step == 0) first = task.item();
    last = task.item();
  }
  MESSAGE("ViT + 2-D SeqPE task loss " << first << " -> " << last);
  CHECK(last < 0.01 * first);
}

TEST_CASE("gradcheck (f64) through a tiny GPT + SeqPE attn_scalar w.r.t. an encoder table and the W_qk bias") {
  engine::Generator gen(12);
  models::GptConfig config;
  config.vocab_size = 7;
  config.context = 4;
  config.layers = 1;
  config.channels = 8;
  config.heads = 2;
  config.embedding_dropout = config.residual_dropout = config.attention_dropout = 0.0;
  config.position_encoding = "seqpe";
  config.dtype = Dtype::f64;
  auto pe_config = tiny_config(ApplyMethod::attn_scalar, QkProjection::single);
  pe_config.model_layers = 1;
  pe_config.encoder.init_std = 0.5;  // large enough that the PE visibly moves the attention
  pe_config.init_std = 0.5;
  auto pe = std::make_shared<seqpe::SeqPe>(pe_config, gen);
  models::Gpt model(config, gen, pe);
  Tensor tokens = Tensor::from_indices({1, 4, 6, 2, 0, 3, 3, 5}, {2, 4});
  Tensor targets = Tensor::from_indices({4, 6, 2, 0, 3, 3, 5, 1}, {2, 4});
  const Tensor positions = Tensor::from_indices({3, 17, 4, 60}, {4});
  Tensor digit_table = parameter(model, "pe.encoder.digit_embedding.weight");
  Tensor projection = parameter(model, "pe.qk_proj.bias");
  auto result = engine::gradcheck(
      [&](const std::vector<Tensor>&) { return ops::cross_entropy(model.forward(tokens, gen, positions), targets); },
      {digit_table, projection});
  CHECK_MESSAGE(result.ok, result.message);
}
