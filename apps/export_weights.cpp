// Writes a training checkpoint's model weights as a plain safetensors file for inference
// (engine::export_weights): bf16 by default, which halves the file against f32 (the checkpoint keeps
// its f32 master weights and the optimizer's moments, three times as much again). The model.json
// beside the checkpoint is copied beside the weights (by default they sit beside the checkpoint and
// share it), so eval_lm, sample_lm, eval_qa and finetune_qa --init read "<name>.weights.safetensors"
// as they read the checkpoint it came from.
//
// Usage: export_weights --checkpoint RUN/best.ckpt.safetensors [--out RUN/best.weights.safetensors]
//                       [--dtype bf16|f32]
// Both files are written atomically, the weights first: a model.json beside them marks them complete,
// as it marks a checkpoint.
#include <cstdio>
#include <filesystem>

#include "apps/app_main.h"
#include "apps/cli_options.h"
#include "apps/lm_run.h"
#include "data/atomic_file.h"
#include "engine/checkpoint.h"
#include "engine/error.h"

namespace {

struct Arguments {
  std::string checkpoint, out, dtype = "bf16";
};

Arguments parse_arguments(int argc, char** argv) {
  Arguments args;
  apps::CommandLine cli("export_weights", "Writes a checkpoint's model weights (bf16 or f32) for inference.",
                        "export_weights --checkpoint runs/lm/seqpe/best.ckpt.safetensors");
  cli.option("--checkpoint", args.checkpoint, "the checkpoint (*.ckpt.safetensors)")->required();
  cli.option("--out", args.out, "the weights file, *.weights.safetensors (default: beside the checkpoint)");
  cli.option("--dtype", args.dtype, "dtype of the floating weights: bf16 or f32");
  cli.parse(argc, argv);
  return args;
}

engine::Dtype weight_dtype(const std::string& text) {
  if (text == "bf16") return engine::Dtype::bf16;
  if (text == "f32") return engine::Dtype::f32;
  throw engine::Error("--dtype " + text + ": expected bf16 or f32");
}

// "<dir>/<name>.ckpt.safetensors" -> "<dir>/<name>.weights.safetensors".
std::string default_weights_path(const std::string& checkpoint) {
  const std::string suffix = apps::kCheckpointSuffix;
  ENGINE_CHECK(checkpoint.ends_with(suffix), "--checkpoint ", checkpoint, ": expected a *", suffix, " file");
  return checkpoint.substr(0, checkpoint.size() - suffix.size()) + apps::kExportedWeightsSuffix;
}

}  // namespace

int main(int argc, char** argv) {
  return apps::run_app("export_weights", [&] {
    Arguments args = parse_arguments(argc, argv);
    const engine::Dtype dtype = weight_dtype(args.dtype);
    if (args.out.empty()) args.out = default_weights_path(args.checkpoint);
    ENGINE_CHECK(args.out.ends_with(apps::kExportedWeightsSuffix), "--out ", args.out, ": expected a *",
                 apps::kExportedWeightsSuffix, " file, so that the model.json beside it is found");
    // Read before anything is written: a checkpoint without its model.json is refused unexported.
    const nlohmann::json model_json = apps::read_model_json(args.checkpoint);
    engine::export_weights(args.checkpoint, args.out, dtype);
    namespace fs = std::filesystem;
    const fs::path out_json = apps::model_json_path(args.out);
    if (!fs::exists(out_json) || !fs::equivalent(out_json, apps::model_json_path(args.checkpoint)))
      data::write_file_atomic(out_json, model_json.dump(2) + "\n");
    std::printf("export_weights: %s -> %s (%s, %.1f MiB) and %s\n", args.checkpoint.c_str(), args.out.c_str(),
                args.dtype.c_str(), double(fs::file_size(args.out)) / (1 << 20),
                out_json.c_str());
  });
}
