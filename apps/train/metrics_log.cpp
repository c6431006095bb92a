// metrics.jsonl: appended line by line, cut back to the resumed step first.
#include "apps/train/metrics_log.h"

#include <sstream>
#include <string>

#include "data/atomic_file.h"
#include "engine/error.h"

namespace apps::train {

MetricsLog::MetricsLog(const std::filesystem::path& path, int64_t keep_through_step) : path_(path) {
  if (keep_through_step >= 0 && std::filesystem::exists(path)) {
    std::ifstream in(path);
    ENGINE_CHECK(in, "cannot read ", path.string(), " to continue it");
    std::ostringstream kept;
    std::string line;
    while (std::getline(in, line)) {
      const nlohmann::json entry = nlohmann::json::parse(line, nullptr, false);
      // A torn last line (a killed run) is dropped like the steps after the checkpoint.
      if (entry.is_discarded() || !entry.is_object() || !entry.contains("step")) continue;
      if (entry.at("step").get<int64_t>() <= keep_through_step) kept << line << "\n";
    }
    data::write_file_atomic(path, kept.str());
  }
  out_.open(path, std::ios::app);
  ENGINE_CHECK(out_, "cannot open ", path.string(), " for writing the run's metrics");
}

void MetricsLog::write(const nlohmann::json& line) {
  if (!out_.is_open()) return;
  out_ << line.dump() << "\n" << std::flush;
  ENGINE_CHECK(out_, "cannot write to ", path_.string(), " (disk full?)");
}

}  // namespace apps::train
