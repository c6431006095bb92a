// Every app's command line, parsed by CLI11 (Debian's libcli11-dev). `--help` (`-h`) lists the
// options with their defaults and one example command, then ends the app with exit status 0
// (apps::HelpPrinted). Each value is read whole by apps/option_values.h, so that a bad one fails
// naming its option ("--steps expects an integer, got '6.9'"), and every option takes effect when it
// is read, in command-line order (train_lm's `--steps 5 --set steps=7` trains 7 steps). CLI11's own
// errors (an unknown option, a missing value or required option) name the option too.
//
// Adding an option is one line:
//   cli.option("--max-tokens", args.max_tokens, "score only the first N predictions (0: all)", 0);
// and, for a field of a JSON run config, one line in the app's list of ConfigFlag.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace apps {

// What --help says of --device, --tf32 and --precision, in every app that has them.
inline constexpr const char* kDeviceHelp = "where to compute: cpu, cuda or cuda:N";
inline constexpr const char* kTf32Help = "f32 GEMMs on TF32 tensor cores (GPUs)";
inline constexpr const char* kPrecisionHelp = "matrix products in fp32 or bf16 (bf16 operands, f32 sums)";
inline constexpr const char* kRecomputeHelp =
    "activations recomputed in the backward: none, gelu (the MLP's GELU output) or block (each transformer "
    "block's): less memory for more compute, the same gradients (models/recompute.h)";
inline constexpr const char* kAllreduceDtypeHelp = "data-parallel gradient all-reduce in fp32 or bf16 (NCCL only)";

// A command-line shorthand for one field of a JSON run config: {"--steps", "/train/steps", "..."}
// sets the field at that JSON pointer, typed by its default (see CommandLine::config_flags).
struct ConfigFlag {
  std::string name;   // "--steps"
  std::string field;  // JSON pointer into the run config: "/steps", "/train/steps"
  std::string help;
};

// The --device, --tf32, --precision, --recompute and --allreduce-dtype shorthands of a training app's
// run config, whose fields are `section` + "device", "tf32", "precision", "recompute" and
// "allreduce_dtype" (section "/" or "/train/").
std::vector<ConfigFlag> device_flags(const std::string& section);

class CommandLine {
 public:
  // `app` names the program; `example` is one complete command, shown last by --help.
  CommandLine(const std::string& app, const std::string& description, const std::string& example);

  static constexpr int64_t kNoMinimum = std::numeric_limits<int64_t>::min();

  // An option with one value, stored into `value` when given (a name without dashes is a
  // positional argument, in the order declared); --help shows the value it holds now as the
  // default. An integer below `minimum` is refused naming the option (1: "must be positive").
  CLI::Option* option(const std::string& name, std::string& value, const std::string& help);
  CLI::Option* option(const std::string& name, int64_t& value, const std::string& help, int64_t minimum = kNoMinimum);
  CLI::Option* option(const std::string& name, int& value, const std::string& help, int64_t minimum = kNoMinimum);
  CLI::Option* option(const std::string& name, uint64_t& value, const std::string& help);
  CLI::Option* option(const std::string& name, double& value, const std::string& help);  // finite
  CLI::Option* option(const std::string& name, bool& value, const std::string& help);    // 0 or 1
  // Comma-separated integers, each at least `minimum` ("128,256,512").
  CLI::Option* option(const std::string& name, std::vector<int64_t>& values, const std::string& help,
                      int64_t minimum);
  // A repeatable option: each occurrence appends its value; as a positional argument (a name without
  // dashes), every remaining argument.
  CLI::Option* option(const std::string& name, std::vector<std::string>& values, const std::string& help);
  // An option without a value: `value` becomes true when it is given.
  CLI::Option* flag(const std::string& name, bool& value, const std::string& help);
  // An option without a value whose every occurrence calls `apply`, in command-line order.
  CLI::Option* on_flag(const std::string& name, const std::string& help, std::function<void()> apply);
  // An option whose every occurrence calls `apply` with its text, in command-line order.
  CLI::Option* each(const std::string& name, const std::string& value_name, const std::string& help,
                    std::function<void(const std::string& text)> apply);

  // --device, --tf32 and (`with_precision`) --precision into `settings`, an apps::train::DeviceSettings
  // (apps/train/device_setup.h): the evaluation apps' options of where and how they compute.
  template <typename DeviceSettings>
  void device_options(DeviceSettings& settings, bool with_precision = true) {
    option("--device", settings.device, kDeviceHelp);
    option("--tf32", settings.tf32, kTf32Help);
    if (with_precision) option("--precision", settings.precision, kPrecisionHelp);
  }

  // Declares each flag as a shorthand for its field of a JSON run config whose defaults are
  // `defaults`: the value is read as the default's type (text for a string, 0 or 1 for a boolean,
  // an integer for an integer field...), --help shows the default, and each occurrence sets the
  // field in `overrides` (a JSON object, patched at the field's pointer).
  void config_flags(const std::vector<ConfigFlag>& flags, const nlohmann::json& defaults, nlohmann::json& overrides);

  // Parses the command line, running each option's effect in order. After --help, throws
  // HelpPrinted (apps/app_main.h); on bad input, throws engine::Error naming the option.
  void parse(int argc, char** argv);

 private:
  std::string app_name_;
  CLI::App cli_;
};

}  // namespace apps
