// Training checkpoints: everything a resumed run needs to continue the exact same loss curve.
//
// A checkpoint is one safetensors file, so standard tools can open it:
//   tensors   "model.<name>" for the model's state dict, "optim.<name>" for the optimizer's state
//   metadata  "format" = "seqpe-engine-checkpoint", "format_version" = "1",
//             "step" = decimal step count,
//             "generators" = JSON {"<name>": {"seed": s, "offset": o}} (engine/rng.h Generator state),
//             "extra" = JSON object for the rest: data position, the run's config, ...
// Writes are atomic (see save_safetensors). The model part can be loaded into a Module with
// Module::load_state_dict(state.model), which checks names and shapes.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "engine/tensor.h"

namespace engine {

// The checkpoint format this build writes and reads.
constexpr int kCheckpointFormatVersion = 1;

struct TrainingState {
  std::map<std::string, Tensor> model;      // Module::state_dict()
  std::map<std::string, Tensor> optimizer;  // optimizer state (moments, ...), named by the optimizer
  int64_t step = 0;                         // optimizer steps taken
  // Generator states by name ("init", "dropout", "data"): (seed, offset) as Generator::set_state takes.
  std::map<std::string, std::pair<uint64_t, uint64_t>> generators;
  // Anything else a resume needs, e.g. {"data_position": ..., "config": {...}}. Must be a JSON object.
  nlohmann::json extra = nlohmann::json::object();
};

// Writes `state` to `path` atomically. Tensors on any device are copied to the host.
void save_checkpoint(const std::string& path, const TrainingState& state);

// Reads a checkpoint written by save_checkpoint. Errors name the file and the missing or malformed
// field, and refuse other format versions.
TrainingState load_checkpoint(const std::string& path);

// The step of the checkpoint at `path`, read from its header alone (the file's header and size are
// validated as load_checkpoint does, its tensors are not read): for choosing among checkpoints.
int64_t read_checkpoint_step(const std::string& path);

// Writes the model weights of the checkpoint at `checkpoint_path` as a plain safetensors file at
// `weights_path`, for inference: floating tensors rounded to `weight_dtype` (bf16 halves the file;
// the checkpoint keeps its f32 master weights), integer tensors as they are, no optimizer state.
// Metadata: "format" = "pt" and "step" = the checkpoint's step. Module::load_state_dict reads the
// file back into a model of any floating dtype. Atomic, as save_safetensors.
void export_weights(const std::string& checkpoint_path, const std::string& weights_path,
                    Dtype weight_dtype = Dtype::bf16);

// What an evaluation needs of a trained model: its weights (floating ones as f32) and the step.
struct ModelWeights {
  std::map<std::string, Tensor> tensors;  // Module::state_dict() names
  int64_t step = 0;
};
// The model weights of a checkpoint or of a file export_weights wrote, told apart by the "format"
// metadata field; anything else is refused naming the file and the field.
ModelWeights load_model_weights(const std::string& path);

}  // namespace engine
