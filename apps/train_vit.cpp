// Trains a ViT classifier on Fashion-MNIST (28 x 28, patch 4: a 7 x 7 grid) with any 2-D position
// encoding (SEQPE_SPEC.md §11 scaled down): AdamW (weight decay on matrices only; none on norms,
// biases, pos_embed, cls_token or any PE parameter), linear warm-up then cosine per step, gradient
// clipping of the model and of SeqPE apart. SeqPE adds its auxiliary losses (contrastive and
// transfer) from one encoder forward per step, with random-shift main positions.
//
// Usage: train_vit [--config FILE.json] [--pe ape|sin|rope|rope2d|rope_mixed|seqpe] [--epochs E | --steps S]
//                  [--stop-after N] [--batch B] [--lr LR] [--seed S] [--threads N] [--out DIR] [--width C] [--depth L]
//                  [--heads H] [--log-every N] [--eval-every N] [--data DIR] [--synthetic N]
//                  [--train-subset N] [--test-subset N]
// Writes DIR/run.json (the resolved config), DIR/metrics.jsonl (one JSON object per evaluation: step,
// epoch, task training loss and images/s since the last evaluation, test accuracy, evaluation
// images/s, elapsed time), DIR/best.safetensors (best test accuracy) and DIR/checkpoint.safetensors
// (latest, to resume: a run whose DIR holds one continues from it). Both are written atomically. A
// resumed run is identical to an uninterrupted one, SeqPE included: its dropout stream is saved and
// its samplers, deterministic from their seeds, are replayed to the saved step. --stop-after N
// ends the run after step N (an evaluation step, where the checkpoint is written) as if interrupted.
// Data parallel: `mpirun -np N train_vit ...` trains on N ranks, --batch being the global batch
// (apps/dist_job.h has the conventions; rank 0 prints, evaluates and writes the files).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

#include "apps/dist_job.h"
#include "apps/vit_run.h"
#include "data/image_loader.h"
#include "engine/checkpoint.h"
#include "engine/denormals.h"
#include "engine/dist/data_parallel.h"
#include "engine/error.h"
#include "engine/json_read.h"
#include "engine/optim/adamw.h"
#include "engine/optim/clip_grad.h"
#include "engine/optim/lr_schedule.h"
#include "ops/cross_entropy.h"
#include "ops/elementwise.h"

namespace {

using engine::Tensor;
using nlohmann::json;

// Three groups: decayed matrices; norms, biases, cls_token and pos_embed; the PE module ("pe.*").
std::vector<engine::optim::ParamGroup> param_groups(const models::ViT& model, const vit_app::TrainSettings& t) {
  engine::optim::NamedTensors decay, no_decay, pe;
  for (const auto& [name, p] : model.named_parameters()) {
    if (name.rfind("pe.", 0) == 0) pe.emplace_back(name, p);
    else if (p.dim() < 2 || name == "cls_token" || name == "pos_embed") no_decay.emplace_back(name, p);
    else decay.emplace_back(name, p);
  }
  std::vector<engine::optim::ParamGroup> groups;
  for (auto* group : {&decay, &no_decay, &pe})
    if (!group->empty()) groups.push_back({*group, t.lr, group == &decay ? t.weight_decay : 0.0});
  return groups;
}

std::vector<Tensor> parameters_where(const models::ViT& model, bool seqpe_part) {
  std::vector<Tensor> out;
  for (const auto& [name, p] : model.named_parameters())
    if ((name.rfind("pe.", 0) == 0) == seqpe_part) out.push_back(p);
  return out;
}

void train(dist_job::Job& job, int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  vit_app::RunConfig config = vit_app::default_run_config();
  for (size_t i = 0; i + 1 < args.size(); ++i)
    if (args[i] == "--config") {
      try {
        config = vit_app::run_config_from_json(engine::read_json_file(args[i + 1]), config);
      } catch (const engine::Error& e) {
        throw engine::Error(args[i + 1] + ": " + e.what());  // a field's error names the file too
      }
      args.erase(args.begin() + long(i), args.begin() + long(i) + 2);
      break;
    }
  const auto unknown = vit_app::apply_overrides(config, args);
  ENGINE_CHECK(unknown.empty(), "train_vit: unknown option ", unknown.empty() ? "" : unknown.front());
  auto& t = config.train;
  if (t.threads > 0) omp_set_num_threads(t.threads);
  engine::set_flush_denormal(t.flush_denormal);

  namespace fs = std::filesystem;
  const std::string checkpoint_path = config.out + "/checkpoint.safetensors";
  const std::string best_path = config.out + "/best.safetensors";
  if (job.is_main()) {
    fs::create_directories(config.out);
    std::ofstream(config.out + "/run.json") << vit_app::run_config_to_json(config).dump(2) << "\n";
  }

  const data::ImageDataset train_set = vit_app::load_train_set(config);
  const data::ImageDataset test_set = vit_app::load_test_set(config);
  engine::Generator init_gen(t.seed);
  vit_app::Model model = vit_app::build_model(config, init_gen);
  models::ViT& vit = *model.vit;
  if (model.seqpe) {  // SeqPE's dropout differs between ranks like the model's
    engine::Generator& g = model.seqpe->dropout_generator();
    g.set_state(job.rank_seed(g.seed()), g.offset());
  }

  data::ImageLoaderOptions loader_options;
  loader_options.batch_size = t.batch;
  loader_options.drop_last = true;
  loader_options.seed = t.seed + 1;
  loader_options.shard = job.shard();
  loader_options.transforms.crop_padding = t.crop_padding;
  loader_options.transforms.horizontal_flip = t.horizontal_flip;
  data::ImageLoader loader(train_set, loader_options);
  const int64_t per_epoch = loader.batches_per_epoch();
  ENGINE_CHECK(per_epoch > 0, "train_vit: ", train_set.size(), " training images give no batch of ", t.batch);
  const int64_t total_steps = t.steps > 0 ? t.steps : t.epochs * per_epoch;
  const int64_t eval_every = t.eval_every > 0 ? t.eval_every : per_epoch;

  engine::optim::AdamW optimizer(param_groups(vit, t));
  engine::optim::LrScheduleConfig schedule_config;
  schedule_config.decay = engine::optim::LrDecay::cosine;
  schedule_config.warmup_steps = std::min<int64_t>(int64_t(t.warmup_epochs * double(per_epoch)), total_steps / 2);
  schedule_config.total_steps = std::max<int64_t>(1, total_steps);
  schedule_config.warmup_lr_init = t.warmup_lr;
  schedule_config.min_lr = t.min_lr;
  schedule_config.warmup_prefix = false;  // timm's CosineLRScheduler default
  const engine::optim::LrSchedule schedule(schedule_config);
  // SeqPE's parameters ("pe.*" of a SeqPE model) are clipped apart; another encoding's learned
  // parameters (RoPE-Mixed's frequencies, also under "pe.") are clipped with the model's.
  const std::vector<Tensor> model_params = model.seqpe ? parameters_where(vit, false) : vit.parameters();
  const std::vector<Tensor> seqpe_params = model.seqpe ? parameters_where(vit, true) : std::vector<Tensor>{};

  engine::dist::DataParallel ddp(job.communicator(), vit.parameters());
  engine::Generator dropout_gen(job.rank_seed(t.seed + 2));
  double best_accuracy = -1;
  if (fs::exists(checkpoint_path)) {
    const engine::TrainingState state = engine::load_checkpoint(checkpoint_path);
    job.check_resume(state.extra);
    vit.load_state_dict(state.model);
    optimizer.load_state_dict(state.optimizer);
    // Rank 0's generators were saved: every rank has drawn as many, from its own seed.
    dropout_gen.set_state(dropout_gen.seed(), state.generators.at("dropout").second);
    if (model.seqpe) {
      engine::Generator& g = model.seqpe->dropout_generator();
      g.set_state(g.seed(), state.generators.at("seqpe_dropout").second);
    }
    loader.seek({state.extra.at("data_epoch").get<int64_t>(), state.extra.at("data_batch").get<int64_t>()});
    best_accuracy = state.extra.at("best_accuracy").get<double>();
    std::printf("resumed from %s at step %lld (best accuracy %.4f)\n", checkpoint_path.c_str(),
                (long long)optimizer.step_count(), best_accuracy);
  }
  // SeqPE's samplers (SPEC 4.1, 5.1, 6) as the model config's SeqPE options describe them.
  std::unique_ptr<seqpe::MainPositionSampler> main_sampler;
  std::unique_ptr<seqpe::ContrastiveSampler> contrastive_sampler;
  std::unique_ptr<seqpe::TransferSampler> transfer_sampler;
  double seqpe_clip = 0;
  if (model.seqpe) {
    const seqpe::SeqPeOptions options = vit_app::seqpe_options(config);
    seqpe_clip = options.clip;
    main_sampler = std::make_unique<seqpe::MainPositionSampler>(options.main_sampler, job.rank_seed(t.seed + 3));
    contrastive_sampler = std::make_unique<seqpe::ContrastiveSampler>(options.contrastive, job.rank_seed(t.seed + 4));
    transfer_sampler = std::make_unique<seqpe::TransferSampler>(options.transfer, job.rank_seed(t.seed + 5));
    // Deterministic from their seeds: replaying them reaches the state of the saved step.
    for (int64_t i = 0; i < optimizer.step_count(); ++i) {
      contrastive_sampler->next();
      transfer_sampler->next();
      main_sampler->next();
    }
  }
  std::printf("train_vit: pe %s, width %lld, depth %lld, heads %lld, %lld parameters; %lld training images, "
              "%lld test; batch %lld, %lld steps (%lld per epoch); %d threads\n",
              config.model.position_encoding.c_str(), (long long)config.model.width, (long long)config.model.depth,
              (long long)config.model.heads, (long long)vit.parameter_count(), (long long)train_set.size(),
              (long long)test_set.size(), (long long)t.batch, (long long)total_steps, (long long)per_epoch,
              omp_get_max_threads());
  std::ofstream metrics;  // left closed (writes nothing) on ranks other than 0
  if (job.is_main()) metrics.open(config.out + "/metrics.jsonl", std::ios::app);
  const auto run_start = std::chrono::steady_clock::now();
  auto interval_start = run_start;
  double interval_loss = 0;
  int64_t interval_steps = 0;
  auto eval_interval_start = run_start;  // for the metrics' training loss and images/s
  double eval_interval_loss = 0;
  int64_t eval_interval_steps = 0;
  vit.train();
  const int64_t end = t.stop_after > 0 ? std::min(t.stop_after, total_steps) : total_steps;
  while (optimizer.step_count() < end) {
    const data::ImageBatch batch = loader.next();
    optimizer.zero_grad();
    schedule.apply(optimizer);
    Tensor loss;
    if (model.seqpe) {
      const auto contrastive = contrastive_sampler->next();
      const auto transfer = transfer_sampler->next();
      const auto step = model.seqpe->encode_step(main_sampler->next(), &contrastive, &transfer);
      loss = ops::cross_entropy(vit.forward(batch.images, dropout_gen), batch.labels);
      const auto aux = model.seqpe->auxiliary_losses(step, &contrastive, &transfer);
      const double task_loss = job.average(loss.item());
      interval_loss += task_loss;
      eval_interval_loss += task_loss;
      if (aux.weighted.defined()) loss = loss + aux.weighted;
    } else {
      loss = ops::cross_entropy(vit.forward(batch.images, dropout_gen), batch.labels);
      const double task_loss = job.average(loss.item());
      interval_loss += task_loss;
      eval_interval_loss += task_loss;
    }
    loss.backward();
    ddp.reduce_gradients();
    engine::optim::clip_grad_norm(model_params, t.clip);
    if (!seqpe_params.empty()) engine::optim::clip_grad_norm(seqpe_params, seqpe_clip);
    optimizer.step();
    ++interval_steps;
    ++eval_interval_steps;
    const int64_t step = optimizer.step_count();

    if (step % t.log_every == 0 || step == total_steps) {
      const auto now = std::chrono::steady_clock::now();
      const double seconds = std::chrono::duration<double>(now - interval_start).count();
      std::printf("step %lld/%lld  epoch %.2f  loss %.4f  lr %.2e  %.0f images/s\n", (long long)step,
                  (long long)total_steps, double(step) / double(per_epoch), interval_loss / double(interval_steps),
                  optimizer.param_groups().front().lr, double(interval_steps * t.batch) / seconds);
      std::fflush(stdout);
      interval_start = now;
      interval_loss = 0;
      interval_steps = 0;
    }
    if (job.is_main() && (step % eval_every == 0 || step == end)) {
      const double train_seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - eval_interval_start).count();
      const double train_loss = eval_interval_loss / double(std::max<int64_t>(1, eval_interval_steps));
      const double train_images_per_s = double(eval_interval_steps * t.batch) / train_seconds;
      const vit_app::Accuracy accuracy = vit_app::evaluate(vit, test_set.images, test_set.labels, t.eval_batch);
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count();
      const bool best = accuracy.top1 > best_accuracy;
      std::printf("eval step %lld: test top-1 %.4f (%.0f images/s)%s\n", (long long)step, accuracy.top1,
                  accuracy.images_per_second, best ? "  best" : "");
      std::fflush(stdout);
      engine::TrainingState state;
      state.model = vit.state_dict();
      state.step = step;
      if (best) {
        best_accuracy = accuracy.top1;
        state.extra = {{"test_accuracy", accuracy.top1}, {"config", vit_app::run_config_to_json(config)}};
        engine::save_checkpoint(best_path, state);
      }
      state.optimizer = optimizer.state_dict();
      state.generators["dropout"] = {dropout_gen.seed(), dropout_gen.offset()};
      if (model.seqpe) {
        const auto& g = model.seqpe->dropout_generator();
        state.generators["seqpe_dropout"] = {g.seed(), g.offset()};
      }
      state.extra = {{"data_epoch", loader.position().epoch}, {"data_batch", loader.position().batch},
                     {"best_accuracy", best_accuracy}};
      job.record_world_size(state.extra);
      engine::save_checkpoint(checkpoint_path, state);
      metrics << json{{"step", step}, {"epoch", double(step) / double(per_epoch)}, {"train_loss", train_loss},
                      {"train_images_per_s", train_images_per_s}, {"test_accuracy", accuracy.top1},
                      {"eval_images_per_s", accuracy.images_per_second}, {"elapsed_s", elapsed}}
                     .dump()
              << "\n";
      metrics.flush();
      eval_interval_start = std::chrono::steady_clock::now();
      eval_interval_loss = 0;
      eval_interval_steps = 0;
    }
  }
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count();
  std::printf("done: best test top-1 %.4f, %.1f s\n", best_accuracy, elapsed);
}

}  // namespace

int main(int argc, char** argv) {
  return dist_job::run("train_vit", [&](dist_job::Job& job) { train(job, argc, argv); });
}
