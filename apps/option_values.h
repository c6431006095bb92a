// Values of the apps' command-line options, each read whole: "12x", "" or "1e3" given to an integer
// option is an error naming the option and the text, where std::stoll would take 12, throw a bare
// "stoll", or take 1.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace apps {

int64_t integer_option(const std::string& flag, const std::string& value);
uint64_t unsigned_option(const std::string& flag, const std::string& value);  // seeds
double number_option(const std::string& flag, const std::string& value);       // finite
// "128,256,512": one or more integers, each at least `minimum`.
std::vector<int64_t> integer_list_option(const std::string& flag, const std::string& value, int64_t minimum);

}  // namespace apps
