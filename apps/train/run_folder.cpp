// The output folder of a training run: checkpoint names, the newest complete checkpoint, pruning
// of periodic checkpoints and the temporaries of killed writers.
#include "apps/train/run_folder.h"

#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <vector>

#include "engine/checkpoint.h"
#include "engine/error.h"

namespace apps::train {

namespace fs = std::filesystem;

namespace {

constexpr const char* kCheckpointSuffix = ".ckpt.safetensors";

// The names (without suffix) of the checkpoints in `out`.
std::vector<std::string> checkpoint_names(const fs::path& out) {
  std::vector<std::string> names;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(out, error)) {
    const std::string file = entry.path().filename().string();
    if (file.size() > std::string(kCheckpointSuffix).size() && file.ends_with(kCheckpointSuffix))
      names.push_back(file.substr(0, file.size() - std::string(kCheckpointSuffix).size()));
  }
  return names;
}

// N of "step_<N>", or -1 for another name.
int64_t step_of_name(const std::string& name) {
  if (!name.starts_with("step_") || name.size() == 5) return -1;
  const std::string digits = name.substr(5);
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) return -1;
  return std::stoll(digits);
}

}  // namespace

fs::path checkpoint_path(const fs::path& out, const std::string& name) { return out / (name + kCheckpointSuffix); }

fs::path model_json_path(const fs::path& out, const std::string& name) { return out / (name + ".model.json"); }

std::string step_checkpoint_name(int64_t step) { return "step_" + std::to_string(step); }

std::optional<fs::path> latest_checkpoint(const fs::path& out) {
  std::optional<fs::path> latest;
  int64_t latest_step = -1;
  for (const std::string& name : checkpoint_names(out)) {
    if (name != "last" && step_of_name(name) < 0) continue;
    if (!fs::exists(model_json_path(out, name))) continue;  // interrupted between the two files
    int64_t step = 0;
    try {
      step = engine::read_checkpoint_step(checkpoint_path(out, name).string());
    } catch (const engine::Error&) {
      continue;  // unreadable: not a candidate
    }
    if (step > latest_step) {
      latest_step = step;
      latest = checkpoint_path(out, name);
    }
  }
  return latest;
}

bool holds_checkpoints(const fs::path& out) { return !checkpoint_names(out).empty(); }

void prune_step_checkpoints(const fs::path& out, int64_t keep) {
  std::vector<int64_t> steps;
  for (const std::string& name : checkpoint_names(out))
    if (const int64_t step = step_of_name(name); step >= 0) steps.push_back(step);
  std::sort(steps.begin(), steps.end(), std::greater<>());
  for (size_t i = size_t(std::max<int64_t>(keep, 0)); i < steps.size(); ++i) {
    const std::string name = step_checkpoint_name(steps[i]);
    fs::remove(model_json_path(out, name));  // first: the pair is then no longer "complete"
    fs::remove(checkpoint_path(out, name));
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(out, error)) {  // ZeRO-1's optimizer shards
      const std::string file = entry.path().filename().string();
      if (file.starts_with(name + ".rank") && file.ends_with(".optim.safetensors")) fs::remove(entry.path());
    }
  }
}

int64_t remove_stale_temporaries(const fs::path& out) {
  int64_t removed = 0;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(out, error)) {
    const std::string file = entry.path().filename().string();
    const size_t at = file.rfind(".tmp.");
    if (at == std::string::npos) continue;
    const std::string pid = file.substr(at + 5);
    const auto digit = [](char c) { return c >= '0' && c <= '9'; };
    if (pid.empty() || pid.size() > 9 || !std::all_of(pid.begin(), pid.end(), digit)) continue;
    // A writer that still runs (kill answers, or refuses for permission) keeps its file.
    if (::kill(pid_t(std::stol(pid)), 0) == 0 || errno != ESRCH) continue;
    if (fs::remove(entry.path(), error)) ++removed;
  }
  return removed;
}

}  // namespace apps::train
