// The data-parallel job of a training app (apps/dist_job.h): the communicator, rank 0's
// preparation, averaging across ranks, resume checks.
#include "apps/dist_job.h"

#include <cstdio>
#include <exception>

#include "apps/app_main.h"
#include "engine/dist/launch_env.h"
#include "engine/error.h"

namespace apps {

Job::Job() : comm_(engine::dist::create_communicator()) {
  if (!is_main()) ENGINE_CHECK(std::freopen("/dev/null", "w", stdout), "rank ", rank(), ": cannot silence stdout");
}

double Job::average(double value) const {
  if (world_size() == 1) return value;
  engine::Tensor t = engine::Tensor::from_vector({value}, {1}, engine::Dtype::f64);
  comm_->all_reduce(t, engine::dist::ReduceOp::average);
  return t.item();
}

void Job::prepare_on_main(const std::function<void()>& prepare) const {
  if (is_main()) prepare();
  comm_->barrier();
}

void Job::check_resume(const nlohmann::json& extra) const {
  const int saved = extra.contains("world_size") ? extra.at("world_size").get<int>() : 1;
  ENGINE_CHECK(saved == world_size(), "the checkpoint was written by a job of ", saved, " ranks; resume it with ",
               saved, " ranks (mpirun -np ", saved, "), not ", world_size(),
               ": per-rank random streams would not continue exactly");
}

int run_dist_job(const char* app, const std::function<void(Job&)>& body) {
  try {
    Job job;
    body(job);
    return 0;
  } catch (const apps::HelpPrinted&) {
    return 0;
  } catch (const std::exception& e) {
    // The launcher's environment names this rank even when the communicator could not be made.
    const engine::dist::LaunchInfo launch = engine::dist::detect_launch();
    if (launch.world_size == 1) {
      std::fprintf(stderr, "%s: %s\n", app, e.what());
      return 1;
    }
    std::fprintf(stderr, "%s: rank %d of %d failed: %s\n", app, launch.rank, launch.world_size, e.what());
    engine::dist::abort_job(1);
  }
}

}  // namespace apps
