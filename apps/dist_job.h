// What a training app needs to run as one rank of a data-parallel job (docs/distributed.md):
//
//   int main(int argc, char** argv) {
//     return apps::run_dist_job("train_lm", [&](apps::Job& job) {
//       job.prepare_on_main([&] { /* build on-disk caches */ });
//       ...  // loaders: options.shard = job.shard(); per-rank randomness: Generator(job.rank_seed(s))
//       engine::dist::DataParallel ddp(job.communicator(), model.parameters());
//       ...  // each step: loss.backward(); ddp.reduce_gradients(); optimizer.step();
//       ...  // logs: job.average(loss); files only if (job.is_main()); resume: job.check_resume(extra)
//     });
//   }
//
// Launching: alone (`train_lm ...`) the job is one process without MPI; under mpirun or srun each
// process is a rank (engine/dist/launch_env.h). Conventions:
//   - "batch" in a run config is the global batch: each rank takes a disjoint shard of B/W rows of
//     every batch (data::BatchShard), so a run gives the same result with any world size W that
//     divides B (up to f32 rounding and the per-rank randomness below).
//   - per-rank randomness (dropout, SeqPE's samplers) is seeded base + rank (docs/method.md#random-shift, docs/method.md#language-modelling);
//     everything shared (initialisation, data order) uses the base seed, and rank 0's parameters
//     are broadcast anyway.
//   - rank 0 prints, writes metrics and checkpoints; the other ranks' stdout is discarded (stderr
//     is kept). Checkpoints hold rank 0's state and the world size; resume with the same world size.
//   - a rank that throws prints "<app>: rank R of W failed: <what>" on stderr and ends the whole job
//     (MPI_Abort) instead of leaving the others waiting in a collective; the exit status is non-zero.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>

#include "data/batch_shard.h"
#include "engine/dist/communicator.h"

namespace apps {

class Job {
 public:
  Job();  // the communicator from the launcher's environment; silences stdout on ranks > 0

  engine::dist::Communicator& communicator() const { return *comm_; }
  int rank() const { return comm_->rank(); }
  int world_size() const { return comm_->world_size(); }
  bool is_main() const { return rank() == 0; }

  // This rank's rows of every global batch.
  data::BatchShard shard() const { return {rank(), world_size()}; }
  // The seed of a generator that must differ between ranks.
  uint64_t rank_seed(uint64_t base) const { return base + uint64_t(rank()); }
  // The mean over ranks of a per-rank value (a loss averaged over the rank's equal shard).
  double average(double value) const;

  // Runs `prepare` on rank 0 while the other ranks wait: for caches that every rank reads next
  // (a tokenizer trained and saved on first use), so that no rank reads a half-written file.
  void prepare_on_main(const std::function<void()>& prepare) const;

  // Recorded in a checkpoint's extra JSON / checked on resume (a checkpoint without it is from 1 rank).
  void record_world_size(nlohmann::json& extra) const { extra["world_size"] = world_size(); }
  void check_resume(const nlohmann::json& extra) const;

 private:
  std::unique_ptr<engine::dist::Communicator> comm_;
};

// Runs `body` as this process's rank and returns main()'s exit status: 0 (also after --help,
// apps/app_main.h), or 1 after printing the error with the app's name, once (and, in a multi-rank
// job, ends every rank: see the conventions above).
int run_dist_job(const char* app, const std::function<void(Job&)>& body);

}  // namespace apps
