// Tests of apps/cli_options.h (every app's command line through CLI11) and of the typed values of
// apps/option_values.h it reads run-config shorthands with.
#include "apps/cli_options.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "apps/app_main.h"
#include "apps/option_values.h"
#include "engine/error.h"

namespace {

using engine::Error;
using nlohmann::json;

// Parses `args` (after the program name) with `cli`.
void parse(apps::CommandLine& cli, std::vector<std::string> args) {
  args.insert(args.begin(), "app");
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  cli.parse(int(argv.size()), argv.data());
}

}  // namespace

TEST_CASE("a run-config shorthand's value is read as its default's type, errors naming the option") {
  CHECK(apps::typed_option_value("--out", "2024", json("runs/lm")) == json("2024"));  // a folder, not a number
  CHECK(apps::typed_option_value("--tf32", "0", json(true)) == json(false));
  CHECK(apps::typed_option_value("--steps", "7", json(300)).is_number_integer());
  CHECK(apps::typed_option_value("--seed", "7", json(uint64_t(0))) == json(7));
  CHECK(apps::typed_option_value("--lr", "3e-3", json(1e-3)) == json(3e-3));
  CHECK_THROWS_WITH_AS(apps::typed_option_value("--tf32", "true", json(true)), "--tf32 expects 0 or 1, got 'true'",
                       Error);
  CHECK_THROWS_WITH_AS(apps::typed_option_value("--steps", "6.9", json(300)), "--steps expects an integer, got '6.9'",
                       Error);
  CHECK_THROWS_WITH_AS(apps::typed_option_value("--seed", "-1", json(uint64_t(0))),
                       "--seed expects a non-negative integer, got '-1'", Error);
  CHECK_THROWS_WITH_AS(apps::typed_option_value("--lr", "nan", json(1e-3)), "--lr expects a finite number, got 'nan'",
                       Error);
}

TEST_CASE("options take effect in command-line order; minimums, unknown options and help") {
  const json defaults = {{"steps", 300}, {"train", {{"lr", 1e-3}}}};
  json overrides = json::object();
  int64_t batch = 8;
  std::vector<std::string> runs;
  apps::CommandLine cli("app", "What the app does.", "app --steps 5");
  cli.config_flags({{"--steps", "/steps", "steps"}, {"--lr", "/train/lr", "learning rate"}}, defaults, overrides);
  cli.each("--set-steps", "N", "the same field another way", [&](const std::string& text) {
    overrides["steps"] = apps::integer_option("--set-steps", text);
  });
  cli.option("--batch", batch, "batch", 1);
  cli.option("--run", runs, "a run; repeatable");

  SUBCASE("later options override earlier ones, whatever their kind") {
    parse(cli, {"--steps", "5", "--set-steps", "7", "--lr", "0.5", "--run", "a", "--batch", "4", "--run", "b"});
    CHECK(overrides == json{{"steps", 7}, {"train", {{"lr", 0.5}}}});
    CHECK(batch == 4);
    CHECK(runs == std::vector<std::string>{"a", "b"});
    parse(cli, {"--set-steps", "7", "--steps", "5"});
    CHECK(overrides.at("steps") == 5);
  }
  SUBCASE("bad input is refused naming the option") {
    CHECK_THROWS_WITH_AS(parse(cli, {"--batch", "0"}), "--batch must be positive, got 0", Error);
    CHECK_THROWS_WITH_AS(parse(cli, {"--steps", "6.9"}), "--steps expects an integer, got '6.9'", Error);
    CHECK_THROWS_WITH_AS(parse(cli, {"--stpes", "5"}), "unknown option --stpes (app --help lists the options)", Error);
    CHECK_THROWS_WITH_AS(parse(cli, {"stray"}), "unexpected argument 'stray' (app --help lists the options)", Error);
    CHECK_THROWS_WITH_AS(parse(cli, {"--batch"}), doctest::Contains("--batch: 1 required INT missing"), Error);
  }
  SUBCASE("--help ends the app after printing the options") {
    CHECK_THROWS_AS(parse(cli, {"--steps", "5", "--help"}), apps::HelpPrinted);
  }
}

TEST_CASE("run_app: exit status 1 and the error once, 0 after --help") {
  CHECK(apps::run_app("app", [] {}) == 0);
  CHECK(apps::run_app("app", [] { throw apps::HelpPrinted{}; }) == 0);
  CHECK(apps::run_app("app", [] { throw Error("--batch must be positive, got 0"); }) == 1);
}
