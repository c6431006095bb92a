// The training loop shared by every training app (see trainer.h).
#include "apps/train/trainer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "apps/train/device_setup.h"
#include "apps/train/run_folder.h"
#include "data/atomic_file.h"
#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/checkpoint.h"
#include "engine/dist/rank_agreement.h"
#include "engine/error.h"
#include "engine/optim/clip_grad.h"
#include "ops/elementwise.h"
#include "ops/indexing.h"

namespace apps::train {

namespace fs = std::filesystem;
using engine::Tensor;
using nlohmann::json;

namespace {

// Consecutive non-finite steps that skip_nonfinite tolerates before it stops the run: past that the
// model, not a batch, is at fault.
constexpr int64_t kMaxSkippedInARow = 10;

std::string duration(double seconds) {
  const int s = int(seconds + 0.5);
  char text[32];
  std::snprintf(text, sizeof text, "%dm%02ds", s / 60, s % 60);
  return text;
}

engine::dist::DataParallelOptions data_parallel_options(const TrainerSettings& settings) {
  engine::dist::DataParallelOptions options;
  options.accumulation_steps = int(settings.accumulation);
  options.reduce_dtype = settings.allreduce_dtype;
  return options;
}

// "<dir>/<name>.rank<r>.optim.safetensors" for the checkpoint "<dir>/<name>.ckpt.safetensors".
fs::path optimizer_shard_path(const fs::path& checkpoint, int rank) {
  const std::string file = checkpoint.filename().string(), suffix = ".ckpt.safetensors";
  ENGINE_CHECK(file.ends_with(suffix), "expected a *", suffix, " checkpoint, got ", checkpoint.string());
  return checkpoint.parent_path() /
         (file.substr(0, file.size() - suffix.size()) + ".rank" + std::to_string(rank) + ".optim.safetensors");
}

// Ranks launched with different configs or models are refused, naming the first field that
// differs, before the trainer's first collective (whose sizes would differ). The output folder is
// rank 0's alone unless every rank writes its ZeRO-1 shard there. Returns `model`.
engine::Module& agreed_model(apps::Job& job, const json& config, bool zero1, engine::Module& model) {
  json compared = config;
  if (!zero1 && compared.is_object()) compared.erase("out");
  engine::dist::check_ranks_agree(job.communicator(), engine::dist::config_fields(compared), "run config");
  engine::dist::check_ranks_agree(job.communicator(), engine::dist::parameter_fields(model.named_parameters()),
                                  "model");
  return model;
}

}  // namespace

engine::Dtype parse_allreduce_dtype(const std::string& text, const std::string& field) {
  if (text == "fp32") return engine::Dtype::f32;
  if (text == "bf16") return engine::Dtype::bf16;
  throw engine::Error(engine::detail::concat(field, " ", text, ": expected fp32 or bf16"));
}

void check_settings(const TrainerSettings& s, const std::function<std::string(const char* field)>& name_of) {
  const auto positive = [&](int64_t value, const char* field) {
    ENGINE_CHECK(value > 0, "run config: ", name_of(field), " must be positive, got ", value);
  };
  positive(s.steps, "steps");
  positive(s.log_every, "log_every");
  positive(s.eval_every, "eval_every");
  positive(s.accumulation, "accumulation");
  ENGINE_CHECK(s.stop_after >= 0, "run config: ", name_of("stop_after"), " must be >= 0, got ", s.stop_after);
  ENGINE_CHECK(s.checkpoint_every >= 0, "run config: ", name_of("checkpoint_every"), " must be >= 0, got ",
               s.checkpoint_every);
  ENGINE_CHECK(s.keep_checkpoints >= 1, "run config: ", name_of("keep_checkpoints"), " must be >= 1, got ",
               s.keep_checkpoints);
  ENGINE_CHECK(s.allreduce_dtype == engine::Dtype::f32 || !s.zero1, "run config: ", name_of("allreduce_dtype"),
               " bf16 is for the data-parallel all-reduce; ZeRO-1 (", name_of("zero1"),
               ") reduce-scatters in f32: drop one of them");
}

Trainer::Trainer(const TrainerSettings& settings, const json& config, apps::Job& job, engine::Module& model,
                 const std::function<ParameterPlan(const engine::Module& model)>& plan,
                 const engine::optim::LrScheduleConfig& schedule, TrainingTask& task,
                 std::unique_ptr<AuxiliaryObjective> auxiliary)
    : settings_(settings), config_(config), job_(job),
      model_((agreed_model(job, config, settings.zero1, model).to_(settings.device), model)), task_(task),
      auxiliary_(std::move(auxiliary)), dropout_gen_(job.rank_seed(settings.seed + 1)), plan_(plan(model_)),
      schedule_(schedule), nccl_(apps::train::gradient_communicator(job.communicator(), settings.device)),
      best_score_(settings.higher_is_better ? -std::numeric_limits<double>::infinity()
                                            : std::numeric_limits<double>::infinity()) {
  build_optimizer();
}

void Trainer::build_optimizer() {
  if (!settings_.zero1) {
    const bool bf16_reduction = settings_.allreduce_dtype == engine::Dtype::bf16 && job_.world_size() > 1;
    ENGINE_CHECK(!bf16_reduction || nccl_, "allreduce_dtype bf16 needs NCCL (--device cuda): MPI, which reduces "
                 "CPU tensors, has no bf16 type; use fp32 on the CPU");
    if (bf16_reduction && !ddp_ && job_.is_main())
      std::printf("gradients all-reduced in bf16 (half the bytes of fp32, 8-bit mantissa sums)\n");
    if (!ddp_)
      ddp_ = std::make_unique<engine::dist::DataParallel>(reduction_communicator(), model_.parameters(),
                                                          data_parallel_options(settings_));
    optimizer_ = std::make_unique<engine::optim::AdamW>(plan_.optimizer_groups);
    return;
  }
  // Built from the parameters as they are now (every rank's equal to rank 0's): after a resume
  // loaded them, the shards are rebuilt.
  zero_ = std::make_unique<engine::dist::Zero1DataParallel>(reduction_communicator(), plan_.optimizer_groups,
                                                            int(settings_.accumulation));
  optimizer_ = std::make_unique<engine::optim::AdamW>(zero_->shard_groups());
}

void Trainer::resume(const std::string& path) {
  const engine::TrainingState state = engine::load_checkpoint(path);
  job_.check_resume(state.extra);
  const bool zero1 = state.extra.value("zero1", false);
  ENGINE_CHECK(zero1 == settings_.zero1, path, " was written ", zero1 ? "with" : "without",
               " zero1 (sharded optimizer state): resume it ", zero1 ? "with" : "without", " zero1");
  model_.load_state_dict(state.model);
  if (settings_.zero1) {
    build_optimizer();
    if (job_.is_main()) {
      optimizer_->load_state_dict(state.optimizer);
    } else {
      const fs::path shard_path = optimizer_shard_path(path, job_.rank());
      const engine::TrainingState shard = engine::load_checkpoint(shard_path.string());
      ENGINE_CHECK(shard.step == state.step, shard_path.string(), " is from step ", shard.step, " but ", path,
                   " from step ", state.step, " (a save was interrupted): resume another checkpoint of the run");
      optimizer_->load_state_dict(shard.optimizer);
    }
  } else {
    optimizer_->load_state_dict(state.optimizer);
  }
  // Rank 0's generators were saved: every rank has drawn as many, from its own seed.
  dropout_gen_.set_state(dropout_gen_.seed(), state.generators.at("dropout").second);
  if (auxiliary_) {
    auxiliary_->restore_generators(state.generators);
    auxiliary_->replay(state.extra.value("auxiliary_draws", state.step));
  }
  task_.restore_data_position(state.extra);
  // Infinite (no validation yet) is written as null.
  if (const json& best = state.extra.at("best_score"); best.is_number()) best_score_ = best.get<double>();
  resumed_step_ = state.step;
  std::printf("resumed from %s at step %lld\n", path.c_str(), (long long)state.step);
}

void Trainer::run() {
  if (job_.is_main()) {
    ENGINE_CHECK(resumed_step_ >= 0 || !holds_checkpoints(settings_.out), settings_.out.string(),
                 " already holds checkpoints of a run: continue it with --resume latest, or pass another --out");
    // Every write the run will make is tried here, before the first step: a read-only or missing
    // folder, or a metrics file that cannot open, fails now rather than at the first checkpoint.
    fs::create_directories(settings_.out);
    const int64_t removed = remove_stale_temporaries(settings_.out);
    if (removed > 0) std::printf("removed %lld temporary files of killed writers\n", (long long)removed);
    data::write_file_atomic(settings_.out / "run.json", config_.dump(2) + "\n");
    metrics_ = MetricsLog(settings_.out / "metrics.jsonl", resumed_step_);
  }
  start_ = std::chrono::steady_clock::now();
  first_step_ = optimizer_->step_count();
  const int64_t end = settings_.stop_after > 0 ? std::min(settings_.stop_after, settings_.steps) : settings_.steps;
  model_.train();
  while (optimizer_->step_count() < end) {
    const double loss = train_step();
    const int64_t step = optimizer_->step_count();
    if (step % settings_.log_every == 0 || step == settings_.steps) log_step(loss);
    if (settings_.checkpoint_every > 0 && step % settings_.checkpoint_every == 0) {
      save(step_checkpoint_name(step));
      if (job_.is_main()) prune_step_checkpoints(settings_.out, settings_.keep_checkpoints);
    }
    if (step % settings_.eval_every == 0 || step == end) validate();
  }
}

double Trainer::train_step() {
  while (true) {
    schedule_.apply(*optimizer_);
    optimizer_->zero_grad();
    Tensor loss_sum;  // this rank's task loss summed over the micro-batches, f64 on the device
    for (int64_t micro = 0; micro < settings_.accumulation; ++micro) {
      // The auxiliary objective draws and encodes before each forward, which consumes its encoding;
      // one backward per micro-batch (the data-parallel overlap needs it), both losses / A.
      Tensor loss = auxiliary_ ? auxiliary_->step_loss() : Tensor();
      const Tensor task_loss = task_.next_loss(settings_.device, dropout_gen_);
      const Tensor task_loss_f64 = task_loss.detach().to(engine::Dtype::f64);
      loss_sum = loss_sum.defined() ? loss_sum + task_loss_f64 : task_loss_f64;
      loss = loss.defined() ? task_loss + loss : task_loss;
      if (settings_.accumulation > 1) loss = loss * (1.0 / double(settings_.accumulation));
      loss.backward();
      if (zero_) zero_->reduce_gradients();
      else ddp_->reduce_gradients();
    }
    // The step's one read from the device: the loss and the clip sets' norms together, after the
    // clipping has been queued (a GPU runs on while the host waits for nothing else).
    std::vector<Tensor> read_back = clip_gradients();
    read_back.insert(read_back.begin(), loss_sum);
    for (Tensor& value : read_back) value = value.reshape({1});
    const std::vector<double> values = ops::concat(read_back, 0).to_vector<double>();
    const double loss = job_.average(values[0] / double(settings_.accumulation));
    double worst_norm = 0;  // the largest norm, or a non-finite one when any is
    for (size_t i = 1; i < values.size(); ++i)
      if (!std::isfinite(values[i]) || (std::isfinite(worst_norm) && values[i] > worst_norm)) worst_norm = values[i];
    const int64_t step = optimizer_->step_count() + 1;
    if (std::isfinite(loss) && std::isfinite(worst_norm)) {
      optimizer_->step();
      if (zero_) zero_->gather_parameters();
      skipped_in_a_row_ = 0;
      interval_loss_ += loss;
      ++interval_steps_;
      return loss;
    }
    char what[160];
    std::snprintf(what, sizeof what, "step %lld: the %s is not finite (loss %g, gradient norm %g)", (long long)step,
                  std::isfinite(loss) ? "gradient norm" : "loss", loss, worst_norm);
    ENGINE_CHECK(settings_.skip_nonfinite, what,
                 "; the run stops with the model of step ", step - 1,
                 " not updated (its last checkpoint in ", settings_.out.string(),
                 " is intact: continue with --resume latest and a lower learning rate, or set "
                 "skip_nonfinite to skip such steps)");
    ENGINE_CHECK(++skipped_in_a_row_ <= kMaxSkippedInARow, what, "; ", kMaxSkippedInARow,
                 " steps in a row were not finite: the run stops (its checkpoints in ", settings_.out.string(),
                 " are intact)");
    std::printf("%s: skipped\n", what);
    std::fflush(stdout);
    optimizer_->zero_grad();
  }
}

std::vector<Tensor> Trainer::clip_gradients() {
  std::vector<Tensor> norms;
  for (const ClipSet& set : plan_.clip_sets) {
    if (!zero_) {
      std::vector<Tensor> params;
      for (size_t g : set.groups)
        for (const auto& [name, param] : plan_.optimizer_groups[g].params) params.push_back(param);
      norms.push_back(engine::optim::clip_grad_norm(params, set.max_norm));
      continue;
    }
    // The shards' gradients: squares summed on each rank, then over the ranks (NCCL on GPUs, so the
    // sum stays on the device); the scale is engine::optim::clip_grad_norm's.
    engine::NoGradGuard no_grad;
    std::vector<Tensor> grads;
    for (size_t g : set.groups) grads.push_back(optimizer_->param_groups()[g].params.front().second.grad());
    const engine::Device device = grads.front().device();
    engine::Backend& backend = engine::backend_for(device.type);
    Tensor squared_norm = Tensor::empty({}, engine::Dtype::f64, device);
    backend.squared_norm(grads, squared_norm);
    reduction_communicator().all_reduce(squared_norm, engine::dist::ReduceOp::sum);
    const Tensor norm = Tensor::empty({}, engine::Dtype::f64, device);
    backend.clip_by_norm_(grads, squared_norm, set.max_norm, norm);
    norms.push_back(norm);
  }
  return norms;
}

void Trainer::log_step(double loss) {
  const int64_t step = optimizer_->step_count();
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = double((step - first_step_) * settings_.items_per_step) / elapsed;
  const double eta = elapsed / double(step - first_step_) * double(settings_.steps - step);
  const double lr = optimizer_->param_groups()[0].lr;
  std::printf("step %5lld/%lld  loss %.4f  lr %.2e  %.0f %s/s  ETA %s\n", (long long)step,
              (long long)settings_.steps, loss, lr, rate, settings_.item_name.c_str(), duration(eta).c_str());
  std::fflush(stdout);
  json line = {{"step", step}, {"loss", loss}, {"lr", lr}, {settings_.metrics_rate_key, rate}};
  if (auxiliary_) line.update(auxiliary_->log_fields());
  metrics_.write(line);
}

void Trainer::validate() {
  const int64_t step = optimizer_->step_count();
  bool best = false;
  if (job_.is_main()) {
    const Validation result = task_.validate();
    model_.train();
    best = settings_.higher_is_better ? result.score > best_score_ : result.score < best_score_;
    if (best) best_score_ = result.score;  // NaN never improves
    std::printf("valid step %lld: %s%s\n", (long long)step, result.summary.c_str(), best ? " (best)" : "");
    std::fflush(stdout);
    json line = result.metrics;
    line["step"] = step;
    if (interval_steps_ > 0) line["train_loss"] = interval_loss_ / double(interval_steps_);
    metrics_.write(line);
  }
  interval_loss_ = 0;
  interval_steps_ = 0;
  // With zero1 every rank writes its optimizer shard: rank 0's verdict (the mean of 1 and zeros is
  // positive) reaches them all.
  if (zero_) best = job_.average(best ? 1.0 : 0.0) > 0;
  save("last");
  if (best) save("best");
}

void Trainer::save(const std::string& name) {
  const fs::path path = checkpoint_path(settings_.out, name);
  if (zero_ && !job_.is_main()) {
    engine::TrainingState shard;
    shard.optimizer = optimizer_->state_dict();
    shard.step = optimizer_->step_count();
    engine::save_checkpoint(optimizer_shard_path(path, job_.rank()).string(), shard);
  }
  // The model.json, written last, marks the checkpoint complete: after every rank's shard.
  if (zero_) job_.communicator().barrier();
  if (!job_.is_main()) return;
  engine::TrainingState state;
  state.model = model_.state_dict();
  state.optimizer = optimizer_->state_dict();
  state.step = optimizer_->step_count();
  state.generators = {{"dropout", {dropout_gen_.seed(), dropout_gen_.offset()}}};
  state.extra = task_.data_position();
  if (auxiliary_) {
    state.generators.merge(auxiliary_->generator_states());
    state.extra["auxiliary_draws"] = auxiliary_->draws();
  }
  state.extra["config"] = config_;
  state.extra["best_score"] = best_score_;
  if (zero_) state.extra["zero1"] = true;
  job_.record_world_size(state.extra);
  engine::save_checkpoint(path.string(), state);
  json model_json = task_.model_json();
  model_json["step"] = state.step;
  data::write_file_atomic(model_json_path(settings_.out, name), model_json.dump(2) + "\n");
}

}  // namespace apps::train
