// The command line and trainer set-up of the apps with a flat run config (train_lm, finetune_qa).
#include "apps/lm_training.h"

#include <fstream>

#include "apps/attention_options.h"
#include "apps/train/device_setup.h"
#include "apps/train/run_folder.h"
#include "apps/train/seqpe_objective.h"
#include "engine/checkpoint.h"
#include "engine/error.h"
#include "engine/json_read.h"
#include "models/recompute.h"

namespace apps {

using nlohmann::json;

RunArguments parse_run_arguments(const AppHelp& app, int argc, char** argv, const std::vector<apps::ConfigFlag>& flags,
                                 const json& defaults, const std::function<json(const json& config)>& new_run_base) {
  RunArguments args;
  json file = json::object(), overrides = json::object();
  apps::CommandLine cli(app.name, app.description, app.example);
  cli.each("--config", "FILE.json", "run config (JSON object of run-config keys) over the defaults, under the options",
           [&](const std::string& path) {
             file = engine::read_json_file(path);
             try {
               merge_config(defaults, file);  // checked here so that a field's error names the file
             } catch (const engine::Error& e) {
               throw engine::Error(path + ": " + e.what());
             }
           });
  cli.option("--resume", args.resume, "checkpoint to resume, or 'latest': the newest complete one in the run's out");
  std::string keys;
  for (const auto& [key, value] : defaults.items()) keys += (keys.empty() ? "" : ", ") + key;
  cli.each("--set", "KEY=VALUE", "set one run-config key (the value as JSON, else as text); repeatable. Keys: " + keys,
           [&](const std::string& assignment) {
             auto [key, parsed] = parse_assignment(assignment);
             const bool text = defaults.contains(key) && defaults[key].is_string();
             overrides[key] = text ? json(assignment.substr(key.size() + 1)) : parsed;
           });
  cli.config_flags(flags, defaults, overrides);
  cli.config_flags(apps::device_flags("/"), defaults, overrides);
  apps::attention_options(cli);
  cli.parse(argc, argv);
  if (args.resume == "latest") {
    const json where = merge_config(merge_config(defaults, file), overrides);
    const std::string out = where.at("out").get<std::string>();
    const auto latest = apps::train::latest_checkpoint(out);
    ENGINE_CHECK(latest, "--resume latest found no complete checkpoint in ", out,
                 " (pass the run's --out, or a checkpoint file)");
    args.resume = latest->string();
  }
  json base = defaults;
  if (!args.resume.empty()) {
    base = merge_config(base, engine::load_checkpoint(args.resume).extra.at("config"));
  } else if (new_run_base) {
    base = new_run_base(merge_config(merge_config(base, file), overrides));
  }
  args.config = merge_config(merge_config(base, file), overrides);
  return args;
}

apps::train::TrainerSettings trainer_settings(const json& config, engine::Device device, int64_t tokens_per_step) {
  apps::train::TrainerSettings s;
  s.out = config.at("out").get<std::string>();
  s.seed = config.at("seed").get<uint64_t>();
  s.steps = config.at("steps").get<int64_t>();
  s.stop_after = config.at("stop_after").get<int64_t>();
  s.accumulation = config.at("accumulation").get<int64_t>();
  s.log_every = config.at("log_every").get<int64_t>();
  s.eval_every = config.at("eval_every").get<int64_t>();
  s.checkpoint_every = config.at("checkpoint_every").get<int64_t>();
  s.keep_checkpoints = config.at("keep_checkpoints").get<int64_t>();
  s.skip_nonfinite = config.at("skip_nonfinite").get<bool>();
  s.zero1 = config.at("zero1").get<bool>();
  s.allreduce_dtype = apps::train::parse_allreduce_dtype(config.at("allreduce_dtype").get<std::string>(), "allreduce_dtype");
  s.higher_is_better = false;
  s.items_per_step = tokens_per_step;
  s.device = device;
  apps::train::check_settings(s, [](const char* field) { return std::string(field); });
  return s;
}

engine::Device setup_device(const char* app, const json& config, const apps::Job& job) {
  const engine::Device device = apps::train::setup_device(app,
                                                    {config.at("device").get<std::string>(),
                                                     config.at("tf32").get<bool>(),
                                                     config.at("precision").get<std::string>()},
                                                    &job.communicator());
  models::set_activation_recompute(models::parse_recompute(config.at("recompute").get<std::string>(), "recompute"));
  return device;
}

int64_t rank_rows(const json& config, const apps::Job& job) {
  const int64_t batch = config.at("batch").get<int64_t>(), accumulation = config.at("accumulation").get<int64_t>();
  ENGINE_CHECK(batch > 0, "run config: batch must be positive, got ", batch);
  ENGINE_CHECK(accumulation > 0, "run config: accumulation must be positive, got ", accumulation);
  const int64_t parts = accumulation * job.world_size();
  ENGINE_CHECK(batch % parts == 0, "run config: batch ", batch, " does not split into ", accumulation,
               " micro-batches on each of ", job.world_size(), " ranks");
  return batch / parts;
}

engine::optim::LrScheduleConfig linear_schedule(const json& config) {
  return {engine::optim::LrDecay::linear, config.at("warmup").get<int64_t>(), config.at("steps").get<int64_t>(), 0, 0,
          true};
}

apps::train::ParameterPlan parameter_plan(const engine::Module& model, const json& config, bool seqpe, double pe_clip) {
  engine::optim::NamedTensors main, pe;
  for (const auto& [name, param] : model.named_parameters())
    (seqpe && name.rfind("pe.", 0) == 0 ? pe : main).emplace_back(name, param);
  apps::train::ParameterPlan plan;
  const double lr = config.at("lr").get<double>(), weight_decay = config.at("weight_decay").get<double>();
  for (const auto& [params, max_norm] : {std::pair{&main, config.at("clip").get<double>()}, std::pair{&pe, pe_clip}}) {
    if (params->empty()) continue;
    apps::train::ClipSet set{{}, max_norm};
    for (engine::optim::ParamGroup& group : engine::optim::weight_decay_groups(*params, lr, weight_decay)) {
      set.groups.push_back(plan.optimizer_groups.size());
      plan.optimizer_groups.push_back(std::move(group));
    }
    plan.clip_sets.push_back(std::move(set));
  }
  return plan;
}

std::unique_ptr<apps::train::AuxiliaryObjective> seqpe_objective(const LanguageModel& model,
                                                           const seqpe::SeqPeOptions& options,
                                                           const json& config, const apps::Job& job) {
  if (!model.seqpe) return nullptr;
  return std::make_unique<apps::train::SeqPeObjective>(*model.seqpe, options, rank_rows(config, job),
                                                 job.rank_seed(config.at("seed").get<uint64_t>()), job.rank());
}

}  // namespace apps
