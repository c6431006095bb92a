// Every app's command line through CLI11, values read by apps/option_values.h (apps/cli_options.h).
#include "apps/cli_options.h"

#include <cstdio>

#include "apps/app_main.h"
#include "apps/option_values.h"
#include "engine/error.h"

namespace apps {

namespace {

// How --help shows a number: as short as it reads back (1e-3, not 0.001000).
std::string shown(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", value);
  return text;
}

// What --help calls the value of a run-config field with this default.
std::string type_name(const nlohmann::json& like) {
  if (like.is_string()) return "TEXT";
  if (like.is_boolean()) return "0|1";
  if (like.is_number_integer()) return "INT";
  if (like.is_number()) return "NUMBER";
  return "JSON";
}

// A run-config default as --help shows it: strings without quotes, booleans as 0 or 1.
std::string shown(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_boolean()) return value.get<bool>() ? "1" : "0";
  if (value.is_number_float()) return shown(value.get<double>());
  return value.dump();
}

// `value`, refused below `minimum` naming the option.
int64_t at_least(const std::string& name, int64_t value, int64_t minimum) {
  if (minimum == 1) ENGINE_CHECK(value >= 1, name, " must be positive, got ", value);
  ENGINE_CHECK(value >= minimum, name, " must be at least ", minimum, ", got ", value);
  return value;
}

}  // namespace

std::vector<ConfigFlag> device_flags(const std::string& section) {
  return {{"--device", section + "device", kDeviceHelp},
          {"--tf32", section + "tf32", kTf32Help},
          {"--precision", section + "precision", kPrecisionHelp},
          {"--recompute", section + "recompute", kRecomputeHelp},
          {"--allreduce-dtype", section + "allreduce_dtype", kAllreduceDtypeHelp}};
}

CommandLine::CommandLine(const std::string& app, const std::string& description, const std::string& example)
    : app_name_(app), cli_(description, app) {
  cli_.footer("Example:\n  " + example);
  cli_.allow_extras();  // refused by parse, naming the first
  cli_.get_formatter()->column_width(36);
}

CLI::Option* CommandLine::each(const std::string& name, const std::string& value_name, const std::string& help,
                               std::function<void(const std::string& text)> apply) {
  // trigger_on_parse: the effect happens as the option is read, so that options apply in order
  // and a repeated option applies each time.
  return cli_.add_option_function<std::string>(name, std::move(apply), help)->type_name(value_name)->trigger_on_parse();
}

CLI::Option* CommandLine::option(const std::string& name, std::string& value, const std::string& help) {
  return each(name, "TEXT", help, [&value](const std::string& text) { value = text; })->default_str(value);
}

CLI::Option* CommandLine::option(const std::string& name, int64_t& value, const std::string& help, int64_t minimum) {
  return each(name, "INT", help,
              [&value, name, minimum](const std::string& text) {
                value = at_least(name, integer_option(name, text), minimum);
              })
      ->default_str(std::to_string(value));
}

CLI::Option* CommandLine::option(const std::string& name, int& value, const std::string& help, int64_t minimum) {
  return each(name, "INT", help,
              [&value, name, minimum](const std::string& text) {
                const int64_t number = at_least(name, integer_option(name, text), minimum);
                ENGINE_CHECK(number >= std::numeric_limits<int>::min() && number <= std::numeric_limits<int>::max(),
                             name, " is out of range, got ", number);
                value = int(number);
              })
      ->default_str(std::to_string(value));
}

CLI::Option* CommandLine::option(const std::string& name, uint64_t& value, const std::string& help) {
  return each(name, "INT", help, [&value, name](const std::string& text) { value = unsigned_option(name, text); })
      ->default_str(std::to_string(value));
}

CLI::Option* CommandLine::option(const std::string& name, double& value, const std::string& help) {
  return each(name, "NUMBER", help, [&value, name](const std::string& text) { value = number_option(name, text); })
      ->default_str(shown(value));
}

CLI::Option* CommandLine::option(const std::string& name, bool& value, const std::string& help) {
  return each(name, "0|1", help, [&value, name](const std::string& text) { value = boolean_option(name, text); })
      ->default_str(value ? "1" : "0");
}

CLI::Option* CommandLine::option(const std::string& name, std::vector<int64_t>& values, const std::string& help,
                                 int64_t minimum) {
  std::string defaults;
  for (const int64_t value : values) defaults += (defaults.empty() ? "" : ",") + std::to_string(value);
  return each(name, "N,N,...", help,
              [&values, name, minimum](const std::string& text) {
                values = integer_list_option(name, text, minimum);
              })
      ->default_str(defaults);
}

CLI::Option* CommandLine::option(const std::string& name, std::vector<std::string>& values, const std::string& help) {
  if (!name.starts_with('-')) return cli_.add_option(name, values, help)->type_name("TEXT");  // takes the rest
  return each(name, "TEXT", help, [&values](const std::string& text) { values.push_back(text); });
}

CLI::Option* CommandLine::flag(const std::string& name, bool& value, const std::string& help) {
  return cli_.add_flag(name, value, help);
}

CLI::Option* CommandLine::on_flag(const std::string& name, const std::string& help, std::function<void()> apply) {
  return cli_.add_flag_function(name, [apply = std::move(apply)](int64_t) { apply(); }, help)->trigger_on_parse();
}

void CommandLine::config_flags(const std::vector<ConfigFlag>& flags, const nlohmann::json& defaults,
                               nlohmann::json& overrides) {
  for (const ConfigFlag& flag : flags) {
    const nlohmann::json::json_pointer field(flag.field);
    const nlohmann::json like = defaults.at(field);
    each(flag.name, type_name(like), flag.help, [&overrides, field, like, name = flag.name](const std::string& text) {
      overrides[field] = typed_option_value(name, text, like);
    })->default_str(shown(like));
  }
}

void CommandLine::parse(int argc, char** argv) {
  const std::string see_help = " (" + app_name_ + " --help lists the options)";
  try {
    cli_.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::fputs(cli_.help().c_str(), stdout);
    std::fflush(stdout);
    throw HelpPrinted{};
  } catch (const CLI::ParseError& error) {
    throw engine::Error(error.what() + see_help);
  }
  // Extras are allowed through CLI11 and refused here, so that the message names the first one.
  const std::vector<std::string> extras = cli_.remaining();
  if (extras.empty()) return;
  const std::string& first = extras.front();
  throw engine::Error((first.starts_with("-") ? "unknown option " + first : "unexpected argument '" + first + "'") +
                      see_help);
}

}  // namespace apps
