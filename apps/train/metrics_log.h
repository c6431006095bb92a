// metrics.jsonl of a training run: one JSON object per line, each with its "step". A resumed run
// first drops the lines of steps after the checkpoint it resumes (they are trained again), so the
// file never repeats a step. Every write is checked: a full disk or a closed file is an error
// naming the file, not a silently shorter log.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace apps::train {

class MetricsLog {
 public:
  MetricsLog() = default;  // writes nothing (ranks other than 0)
  // Opens `path` for appending, after dropping its lines whose step exceeds `keep_through_step`
  // (a resumed run's checkpoint step; -1 keeps every line).
  MetricsLog(const std::filesystem::path& path, int64_t keep_through_step);

  // Appends one line (when open) and flushes it.
  void write(const nlohmann::json& line);

 private:
  std::filesystem::path path_;
  std::ofstream out_;
};

}  // namespace apps::train
