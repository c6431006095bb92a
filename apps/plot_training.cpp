// Draws the training curves of train_lm runs in one SVG, read from each run's metrics.jsonl: per
// run the training loss (the logged steps), the validation NLL (log of "valid_ppl") and, for SeqPE
// runs, the unweighted contrastive and distillation losses ("contrastive_loss", "transfer_loss"),
// against the step, on a logarithmic loss axis. A run is named after its directory. Series are
// ordered by quantity (every run's training loss, then every validation curve, then the auxiliary
// losses), so that with up to ten runs a run keeps its colour: solid for training, dashed for
// validation (apps/svg_plot.h).
//
// Usage: plot_training --out FILE.svg RUN_DIR... (--help lists the options)
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "apps/app_main.h"
#include "apps/cli_options.h"
#include "apps/svg_plot.h"
#include "engine/error.h"
#include "engine/json_read.h"

namespace {

namespace fs = std::filesystem;

struct Arguments {
  std::string out;
  std::vector<std::string> runs;
};

Arguments parse_arguments(int argc, char** argv) {
  Arguments args;
  apps::CommandLine cli("plot_training", "The training curves of train_lm runs in one SVG, from their metrics.jsonl.",
                        "plot_training --out runs/curves.svg runs/reproduce_lm/ape runs/reproduce_lm/seqpe");
  cli.option("--out", args.out, "the SVG file to write")->required();
  cli.option("runs", args.runs, "train_lm run folders, each holding metrics.jsonl")->required();
  cli.parse(argc, argv);
  return args;
}

// One run's curves: for each quantity, (step, value) points in the order logged.
struct RunCurves {
  std::string name;
  apps::Series train, valid, contrastive, transfer;
};

// Reads RUN/metrics.jsonl; errors name the file and line.
RunCurves read_run(const std::string& run) {
  const fs::path path = fs::path(run) / "metrics.jsonl";
  std::ifstream in(path);
  ENGINE_CHECK(in, "cannot read ", path.string(), " (is ", run, " a train_lm run directory?)");
  RunCurves curves;
  curves.name = fs::absolute(run).lexically_normal().filename().string();
  if (curves.name.empty()) curves.name = fs::absolute(run).lexically_normal().parent_path().filename().string();
  curves.train.name = curves.name + " train";
  curves.valid.name = curves.name + " valid";
  curves.contrastive.name = curves.name + " contrastive";
  curves.transfer.name = curves.name + " distillation";
  std::string text;
  for (int line = 1; std::getline(in, text); ++line) {
    if (text.empty()) continue;
    const nlohmann::json record = engine::parse_json(text, path.string() + " line " + std::to_string(line));
    ENGINE_CHECK(record.is_object() && record.contains("step"), path.string(), " line ", line, ": no \"step\"");
    const double step = record.at("step").get<double>();
    const auto add = [&](apps::Series& series, const char* key, bool log) {
      if (!record.contains(key)) return;
      series.x.push_back(step);
      series.y.push_back(log ? std::log(record.at(key).get<double>()) : record.at(key).get<double>());
    };
    add(curves.train, "loss", false);
    add(curves.valid, "valid_ppl", true);
    add(curves.contrastive, "contrastive_loss", false);
    add(curves.transfer, "transfer_loss", false);
  }
  ENGINE_CHECK(!curves.train.x.empty(), path.string(), " has no logged training loss");
  return curves;
}

}  // namespace

int main(int argc, char** argv) {
  return apps::run_app("plot_training", [&] {
    const Arguments args = parse_arguments(argc, argv);
    std::vector<RunCurves> runs;
    for (const std::string& run : args.runs) runs.push_back(read_run(run));
    apps::LinePlot figure;
    figure.title = "Training curves";
    figure.x = {"step", apps::Scale::linear};
    figure.y = {"loss (nats; validation: NLL per token)", apps::Scale::log10};
    figure.markers = false;
    for (apps::Series RunCurves::*quantity :
         {&RunCurves::train, &RunCurves::valid, &RunCurves::contrastive, &RunCurves::transfer})
      for (const RunCurves& run : runs)
        if (!(run.*quantity).x.empty()) figure.series.push_back(run.*quantity);
    // Room for the legend's 20-pixel rows beside the frame.
    figure.width = 1000;
    figure.height = std::max(figure.height, 120 + 20 * int(figure.series.size()));
    apps::write_svg(figure, args.out);
    std::printf("plot_training: %zu curves of %zu runs in %s\n", figure.series.size(), runs.size(), args.out.c_str());
  });
}
