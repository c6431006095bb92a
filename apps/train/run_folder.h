// A training run's output folder: what the trainer keeps there and how it finds it again.
//
//   <out>/run.json                    the resolved run config of the latest start (written first,
//                                      so a read-only folder is noticed before any training)
//   <out>/metrics.jsonl               one JSON object per logged step and per validation
//   <out>/<name>.ckpt.safetensors     a checkpoint (engine/checkpoint.h) ...
//   <out>/<name>.model.json           ... and what rebuilds its model; written after the checkpoint,
//                                      so a checkpoint is complete when both exist
// Checkpoint names: "last" (every validation), "best" (the best validation so far) and
// "step_<N>" (every checkpoint_every steps, the newest keep_checkpoints of them kept). With ZeRO-1,
// rank r > 0's optimizer shard of each sits beside it as "<name>.rank<r>.optim.safetensors".
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace apps::train {

// "<out>/<name>.ckpt.safetensors" and the model.json beside it.
std::filesystem::path checkpoint_path(const std::filesystem::path& out, const std::string& name);
std::filesystem::path model_json_path(const std::filesystem::path& out, const std::string& name);
// "step_<N>".
std::string step_checkpoint_name(int64_t step);

// The newest complete checkpoint of `out` (the highest step among "last" and "step_<N>" whose
// model.json exists and whose checkpoint reads back), or nothing.
std::optional<std::filesystem::path> latest_checkpoint(const std::filesystem::path& out);
// Whether `out` holds any checkpoint (complete or not): a new run must not write over it.
bool holds_checkpoints(const std::filesystem::path& out);

// Deletes the "step_<N>" checkpoints of `out` but the `keep` newest.
void prune_step_checkpoints(const std::filesystem::path& out, int64_t keep);
// Deletes the "*.tmp.<pid>" files that a killed writer left in `out` (its process is gone).
// Returns how many.
int64_t remove_stale_temporaries(const std::filesystem::path& out);

}  // namespace apps::train
