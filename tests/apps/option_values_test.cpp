// Tests of apps/option_values.h: values read whole, errors naming the option.
#include "apps/option_values.h"

#include <doctest/doctest.h>

#include "engine/error.h"

TEST_CASE("option values are read whole, and bad ones name the option") {
  CHECK(apps::integer_option("--steps", "120") == 120);
  CHECK(apps::integer_option("--offset", "-3") == -3);
  CHECK(apps::unsigned_option("--seed", "18446744073709551615") == 18446744073709551615ull);
  CHECK(apps::number_option("--temperature", "0.8") == 0.8);
  CHECK(apps::number_option("--lr", "3e-4") == 3e-4);
  CHECK(apps::integer_list_option("--lengths", "128,256,512", 1) == std::vector<int64_t>{128, 256, 512});
  CHECK(apps::integer_list_option("--lengths", "7", 1) == std::vector<int64_t>{7});

  using engine::Error;
  CHECK_THROWS_WITH_AS(apps::integer_option("--steps", "12x"), "--steps expects an integer, got '12x'", Error);
  CHECK_THROWS_WITH_AS(apps::integer_option("--steps", ""), "--steps expects an integer, got ''", Error);
  CHECK_THROWS_WITH_AS(apps::integer_option("--steps", "1e3"), "--steps expects an integer, got '1e3'", Error);
  CHECK_THROWS_WITH_AS(apps::integer_option("--steps", "99999999999999999999"),
                       "--steps expects an integer, got '99999999999999999999'", Error);
  CHECK_THROWS_WITH_AS(apps::unsigned_option("--seed", "-1"), "--seed expects a non-negative integer, got '-1'", Error);
  CHECK_THROWS_WITH_AS(apps::number_option("--temperature", "warm"), "--temperature expects a number, got 'warm'",
                       Error);
  CHECK_THROWS_WITH_AS(apps::number_option("--lr", "inf"), "--lr expects a finite number, got 'inf'", Error);
  CHECK_THROWS_WITH_AS(apps::integer_list_option("--lengths", "128,,512", 1),
                       "--lengths expects comma-separated integers, got ''", Error);
  CHECK_THROWS_WITH_AS(apps::integer_list_option("--lengths", "128,0", 1), "--lengths values must be >= 1, got 0",
                       Error);
}

TEST_CASE("--set values: JSON when they parse, else text; integer fields take only integers") {
  CHECK(apps::assignment_value("lr", "3e-4") == nlohmann::json(3e-4));
  CHECK(apps::assignment_value("seqpe", R"({"encoder": {"layers": 2}})")["encoder"]["layers"] == 2);
  CHECK(apps::assignment_value("out", "runs/a b") == nlohmann::json("runs/a b"));
  CHECK(apps::assignment_value("out", "[unclosed") == nlohmann::json("[unclosed"));
  CHECK_THROWS_WITH_AS(apps::assignment_value("seqpe", std::string(100000, '[') + std::string(100000, ']')),
                       doctest::Contains("--set seqpe: JSON nested deeper than 128 levels"), engine::Error);
  // Found by fuzzing: a string value that is not UTF-8 ended in nlohmann's type_error when an error
  // message or a checkpoint dumped it.
  CHECK_THROWS_WITH_AS(apps::assignment_value("pe", "rt\xee\x90\x9a\x8f"),
                       "--set pe: the value is not valid UTF-8 (run configs are stored as JSON)", engine::Error);

  using nlohmann::json;
  CHECK_NOTHROW(apps::check_override_type("channels", json(128), json(256)));
  CHECK_NOTHROW(apps::check_override_type("lr", json(1e-3), json(1)));  // an integer is a fine real
  CHECK_NOTHROW(apps::check_override_type("seed", json(10086), json(18446744073709551615ull)));
  CHECK_THROWS_WITH_AS(apps::check_override_type("channels", json(128), json(33.9)),
                       "run config: 'channels' must be an integer, got 33.9 (default 128)", engine::Error);
  CHECK_THROWS_WITH_AS(apps::check_override_type("steps", json(300), json(6.0)),
                       doctest::Contains("'steps' must be an integer, got 6.0"), engine::Error);
  CHECK_THROWS_WITH_AS(apps::check_override_type("pe", json("rope"), json(3)),
                       "run config: 'pe' must be a string, got 3", engine::Error);
}
