// SeqPE's options as JSON (seqpe/seqpe_options.h): the text and image defaults sized to the model,
// reading and checking every field.
#include "seqpe/seqpe_options.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>

#include "engine/error.h"
#include "models/json_config.h"

namespace seqpe {

namespace {

using nlohmann::json;
using models::ConfigReader;

// What SeqPE takes from the model it serves.
struct ModelShape {
  int64_t width = 0, heads = 0, layers = 0;
  engine::Shape block;  // the training block: {context} or {grid, grid}
  bool image = false;   // 2-D positions, a class token, the image defaults
  engine::Dtype dtype = engine::Dtype::f32;
};

const std::vector<std::string> apply_names = {"input_add", "attn_add", "attn_mul", "attn_scalar"};
const std::vector<std::string> projection_names = {"single", "multi", "none"};
const std::vector<std::string> padding_names = {"left", "right"};

std::string number_text(double value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

double probability(ConfigReader& r, const std::string& field, double fallback) {
  const double p = r.real(field, fallback, -HUGE_VAL, HUGE_VAL);
  if (!(p >= 0.0 && p <= 1.0)) r.fail(field, "must be in [0, 1], got " + number_text(p));
  return p;
}

double weight(ConfigReader& r, const std::string& field, double fallback) {
  return r.real(field, fallback, 0.0, HUGE_VAL);
}

// The reference's values for the setting (docs/method.md), with the model's sizes where the reference ties them to the model.
SeqPeOptions defaults(const ModelShape& m) {
  SeqPeOptions o;
  o.pe = m.image ? SeqPeConfig::image_defaults() : SeqPeConfig::text_defaults();
  o.main_sampler = m.image ? MainPositionSamplerConfig::image_defaults() : MainPositionSamplerConfig::text_defaults();
  o.contrastive = m.image ? ContrastiveSamplerConfig::image_defaults() : ContrastiveSamplerConfig::text_defaults();
  o.transfer = m.image ? TransferSamplerConfig::image_defaults() : TransferSamplerConfig::text_defaults();
  o.pe.encoder.channels = m.width;
  o.pe.encoder.heads = m.heads;
  o.pe.model_width = m.width;
  o.pe.model_heads = m.heads;
  o.pe.model_layers = m.layers;
  o.pe.transfer_heads = m.heads;
  o.pe.encoder.dtype = m.dtype;
  o.transfer.num_indices = std::min(o.transfer.num_indices, engine::shape_numel(m.block));
  return o;
}

SeqPeOptions read_options(const json& options, const ModelShape& m) {
  SeqPeOptions o = defaults(m);
  SeqPeConfig& pe = o.pe;
  SeqPeEncoderConfig& enc = pe.encoder;
  const std::string what = "SeqPE options";
  ConfigReader r(options, what);
  pe.pe_max_position = r.integer("pe_max_position", pe.pe_max_position, 2);
  enc.base = r.integer("base", enc.base, 2);
  pe.padding = r.choice("padding", padding_names[size_t(pe.padding)], padding_names) == "left" ? Padding::left : Padding::right;
  const std::string apply = r.choice("apply", apply_names[size_t(pe.apply)], apply_names);
  pe.apply = ApplyMethod(std::find(apply_names.begin(), apply_names.end(), apply) - apply_names.begin());
  const std::string projection = r.choice("qk_projection", projection_names[size_t(pe.qk_projection)], projection_names);
  pe.qk_projection =
      QkProjection(std::find(projection_names.begin(), projection_names.end(), projection) - projection_names.begin());
  pe.multi_head = r.boolean("multi_head", pe.multi_head);
  pe.scalar_scale = r.real("scalar_scale", pe.scalar_scale, -HUGE_VAL, HUGE_VAL);
  pe.init_std = r.positive("init_std", pe.init_std);
  pe.truncated_normal_init = r.boolean("truncated_normal_init", pe.truncated_normal_init);
  o.clip = r.positive("clip", o.clip);

  // Each nested object is read by its own reader, so errors name it ("SeqPE options.encoder").
  const json encoder_json = r.object("encoder"), contrastive_json = r.object("contrastive"),
             transfer_json = r.object("transfer"), shift_json = r.object("random_shift");
  ConfigReader e(encoder_json, what + ".encoder");
  enc.channels = e.integer("channels", enc.channels, 1);
  enc.heads = e.integer("heads", enc.heads, 1);
  enc.layers = e.integer("layers", enc.layers, 1);
  enc.causal = e.boolean("causal", enc.causal);
  enc.residual_dropout = e.real("residual_dropout", enc.residual_dropout, 0.0, 1.0);
  enc.layer_norm_eps = e.positive("layer_norm_eps", enc.layer_norm_eps);
  enc.temperature = e.positive("temperature", enc.temperature);
  enc.init_std = e.positive("init_std", enc.init_std);
  e.finish();
  if (enc.channels % enc.heads != 0)
    e.fail("heads", "must divide 'channels' (" + std::to_string(enc.channels) + " % " + std::to_string(enc.heads) +
                        " != 0)");

  ContrastiveSamplerConfig& ct = o.contrastive;
  ConfigReader c(contrastive_json, what + ".contrastive");
  pe.contrastive_weight = weight(c, "weight", pe.contrastive_weight);
  ct.batch_size = c.integer("batch_size", ct.batch_size, 1);
  ct.num_candidates = c.integer("num_candidates", ct.num_candidates, 1);
  ct.random_only_probability = probability(c, "random_only_probability", ct.random_only_probability);
  ct.hard_negative_probability = probability(c, "hard_negative_probability", ct.hard_negative_probability);
  ct.distributional_probability = probability(c, "distributional_probability", ct.distributional_probability);
  ct.hard_negative_ratio = c.real("hard_negative_ratio", ct.hard_negative_ratio, 0.0, 1.0);
  ct.distributional_range = c.integer("distributional_range", ct.distributional_range, 1);
  ct.batches_per_epoch = c.integer("batches_per_epoch", ct.batches_per_epoch, 0);
  c.finish();
  const double modes = ct.random_only_probability + ct.hard_negative_probability + ct.distributional_probability;
  if (std::abs(modes - 1.0) > 1e-9)
    c.fail("distributional_probability", "makes the three mode probabilities sum to " + number_text(modes) +
                                             "; random_only + hard_negative + distributional must be 1");

  TransferSamplerConfig& tr = o.transfer;
  ConfigReader t(transfer_json, what + ".transfer");
  pe.transfer_weight = weight(t, "weight", pe.transfer_weight);
  tr.batch_size = t.integer("batch_size", tr.batch_size, 1);
  tr.num_indices = t.integer("num_indices", tr.num_indices, 1);
  pe.transfer_heads = t.integer("heads", pe.transfer_heads, 1);
  pe.transfer_on_shifted_steps = t.boolean("on_shifted_steps", pe.transfer_on_shifted_steps);
  tr.batches_per_epoch = t.integer("batches_per_epoch", tr.batches_per_epoch, 0);
  t.finish();
  const int64_t cells = engine::shape_numel(m.block);
  if (tr.num_indices > cells)
    t.fail("num_indices", "must not exceed the " + std::to_string(cells) + " cells of the training block, got " +
                              std::to_string(tr.num_indices));

  MainPositionSamplerConfig& main = o.main_sampler;
  ConfigReader s(shift_json, what + ".random_shift");
  main.use_random_shift = s.boolean("enabled", main.use_random_shift);
  main.shift_rate = probability(s, "rate", main.shift_rate);
  main.shift_downsample = s.integer("downsample", main.shift_downsample, 0);
  main.blocks_per_shifted_step = s.integer("blocks", main.blocks_per_shifted_step, 1);
  main.restart_offset_range = s.integer("restart_offset_range", main.restart_offset_range, 1);
  s.finish();
  r.finish();

  // Sizes that follow from the fields above and the model.
  const int64_t dims = m.image ? 2 : 1;
  const int64_t side = m.image ? int64_t(std::llround(std::sqrt(double(pe.pe_max_position)))) : pe.pe_max_position;
  if (m.image && side * side != pe.pe_max_position)
    r.fail("pe_max_position", "must be a square (the side of the 2-D grid squared), got " +
                                  std::to_string(pe.pe_max_position));
  for (int64_t extent : m.block)
    if (extent > side)
      r.fail("pe_max_position", "gives positions [0, " + std::to_string(side) + ") per coordinate, smaller than the " +
                                    "training block " + engine::shape_str(m.block));
  if (pe.qk_projection == QkProjection::none && pe.apply != ApplyMethod::input_add && m.image)
    r.fail("qk_projection", "\"none\" is not available for a ViT (the reference has no such branch)");
  enc.dims = dims;
  enc.max_digits = PositionTokenizer::from_pe_max_position(pe.pe_max_position, dims, enc.base).max_digits();
  pe.class_token = m.image;
  enc.out_features = pe.out_features();
  if (pe.out_features() % pe.transfer_heads != 0)
    t.fail("heads", "must divide D_out = " + std::to_string(pe.out_features()) + ", got " +
                        std::to_string(pe.transfer_heads));
  main.dims = ct.dims = tr.dims = dims;
  main.pe_max_position = ct.pe_max_position = tr.pe_max_position = pe.pe_max_position;
  main.block_shape = tr.block_shape = m.block;
  ct.base = enc.base;
  return o;
}

void require_seqpe(const std::string& model, const std::string& name) {
  ENGINE_CHECK(name == "seqpe", model, " config field 'position_encoding' is \"", name,
               "\"; SeqPE options need \"seqpe\"");
}

}  // namespace

SeqPeOptions seqpe_options(const models::GptConfig& model) {
  require_seqpe("GPT", model.position_encoding);
  return read_options(model.position_encoding_options,
                      {model.channels, model.heads, model.layers, {model.context}, false, model.dtype});
}

SeqPeOptions seqpe_options(const models::VitConfig& model) {
  require_seqpe("ViT", model.position_encoding);
  const int64_t grid = model.image_size / model.patch;
  return read_options(model.position_encoding_options,
                      {model.width, model.heads, model.depth, {grid, grid}, true, model.dtype});
}

models::GptConfig with_full_seqpe_options(models::GptConfig model) {
  model.position_encoding_options = seqpe_options_to_json(seqpe_options(model));
  return model;
}

models::VitConfig with_full_seqpe_options(models::VitConfig model) {
  model.position_encoding_options = seqpe_options_to_json(seqpe_options(model));
  return model;
}

json seqpe_options_to_json(const SeqPeOptions& o) {
  const SeqPeConfig& pe = o.pe;
  const SeqPeEncoderConfig& enc = pe.encoder;
  const ContrastiveSamplerConfig& ct = o.contrastive;
  const TransferSamplerConfig& tr = o.transfer;
  const MainPositionSamplerConfig& main = o.main_sampler;
  return {
      {"pe_max_position", pe.pe_max_position},
      {"base", enc.base},
      {"padding", padding_names[size_t(pe.padding)]},
      {"apply", apply_names[size_t(pe.apply)]},
      {"qk_projection", projection_names[size_t(pe.qk_projection)]},
      {"multi_head", pe.multi_head},
      {"scalar_scale", pe.scalar_scale},
      {"init_std", pe.init_std},
      {"truncated_normal_init", pe.truncated_normal_init},
      {"clip", o.clip},
      {"encoder",
       {{"channels", enc.channels}, {"heads", enc.heads}, {"layers", enc.layers}, {"causal", enc.causal},
        {"residual_dropout", enc.residual_dropout}, {"layer_norm_eps", enc.layer_norm_eps},
        {"temperature", enc.temperature}, {"init_std", enc.init_std}}},
      {"contrastive",
       {{"weight", pe.contrastive_weight}, {"batch_size", ct.batch_size}, {"num_candidates", ct.num_candidates},
        {"random_only_probability", ct.random_only_probability},
        {"hard_negative_probability", ct.hard_negative_probability},
        {"distributional_probability", ct.distributional_probability},
        {"hard_negative_ratio", ct.hard_negative_ratio}, {"distributional_range", ct.distributional_range},
        {"batches_per_epoch", ct.batches_per_epoch}}},
      {"transfer",
       {{"weight", pe.transfer_weight}, {"batch_size", tr.batch_size}, {"num_indices", tr.num_indices},
        {"heads", pe.transfer_heads}, {"on_shifted_steps", pe.transfer_on_shifted_steps},
        {"batches_per_epoch", tr.batches_per_epoch}}},
      {"random_shift",
       {{"enabled", main.use_random_shift}, {"rate", main.shift_rate}, {"downsample", main.shift_downsample},
        {"blocks", main.blocks_per_shifted_step}, {"restart_offset_range", main.restart_offset_range}}},
  };
}

}  // namespace seqpe
