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
