// How every app's main() ends: exit status 0 when its work is done or its --help was printed, 1
// after one line "<app>: <error>" on stderr. Errors thrown inside an app therefore never start with
// the app's name: it is added here, once.
#pragma once

#include <functional>

namespace apps {

// Thrown by CommandLine::parse (apps/cli_options.h) once --help has been printed: the app stops
// there with exit status 0.
struct HelpPrinted {};

// Runs main()'s `body` and returns its exit status (see the file comment). The training apps end
// through apps::run_dist_job instead, which does the same for every rank of a job.
int run_app(const char* app, const std::function<void()>& body);

}  // namespace apps
