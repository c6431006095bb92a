// The end of every app's main(): exit status and the one error line (apps/app_main.h).
#include "apps/app_main.h"

#include <cstdio>
#include <exception>

namespace apps {

int run_app(const char* app, const std::function<void()>& body) {
  try {
    body();
    return 0;
  } catch (const HelpPrinted&) {
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", app, e.what());
    return 1;
  }
}

}  // namespace apps
