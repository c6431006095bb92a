// Ranks as threads of one process: a Communicator for tests that need several ranks without MPI
// (DataParallel's averaging, rank agreement). Every collective is a rendezvous of all threads: each
// publishes its tensor, all wait, each computes its own result from the published tensors, all wait
// again, then each writes its result. Legend: N elements of one rank's tensor, W world size.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "engine/autograd.h"
#include "engine/dist/communicator.h"

namespace thread_communicator {

// What the threads of one group share.
class ThreadGroup {
 public:
  explicit ThreadGroup(int size) : size_(size), published_(size_t(size)) {}
  int size() const { return size_; }

  // Blocks until all `size` threads have arrived.
  void barrier() {
    std::unique_lock<std::mutex> lock(mutex_);
    const int64_t generation = generation_;
    if (++arrived_ == size_) {
      arrived_ = 0;
      ++generation_;
      changed_.notify_all();
      return;
    }
    changed_.wait(lock, [&] { return generation_ != generation; });
  }
  const engine::Tensor*& published(int rank) { return published_[size_t(rank)]; }

 private:
  int size_;
  std::mutex mutex_;
  std::condition_variable changed_;
  int arrived_ = 0;
  int64_t generation_ = 0;
  std::vector<const engine::Tensor*> published_;
};

class ThreadCommunicator final : public engine::dist::Communicator {
 public:
  ThreadCommunicator(ThreadGroup& group, int rank) : group_(group), rank_(rank) {}
  int rank() const override { return rank_; }
  int world_size() const override { return group_.size(); }
  int local_rank() const override { return rank_; }
  const char* name() const override { return "threads"; }

  // tensor [N] <- sum (or mean) over ranks, accumulated in f64 in rank order.
  void all_reduce(engine::Tensor& tensor, engine::dist::ReduceOp op) override {
    exchange(tensor, [&] {
      std::vector<double> total(size_t(tensor.numel()), 0.0);
      for (int r = 0; r < world_size(); ++r) {
        const std::vector<double> values = group_.published(r)->to_vector<double>();
        for (size_t i = 0; i < total.size(); ++i) total[i] += values[i];
      }
      if (op == engine::dist::ReduceOp::average)
        for (double& v : total) v /= world_size();
      return engine::Tensor::from_vector(total, tensor.shape(), tensor.dtype());
    }, tensor);
  }
  // tensor [N] <- root's tensor [N].
  void broadcast(engine::Tensor& tensor, int root) override {
    exchange(tensor, [&] { return group_.published(root)->clone(); }, tensor);
  }
  // output [W*N] <- the ranks' input [N] in rank order.
  void all_gather(const engine::Tensor& input, engine::Tensor& output) override {
    engine::dist::detail::check_gather_sizes(name(), "all_gather", input, output, world_size());
    exchange(input, [&] {
      engine::Tensor gathered = engine::Tensor::empty(output.shape(), output.dtype());
      for (int r = 0; r < world_size(); ++r)
        gathered.narrow(0, r * input.numel(), input.numel()).copy_(group_.published(r)->view({input.numel()}));
      return gathered;
    }, output);
  }
  // output [N] <- this rank's slice of the sum (or mean) over ranks of input [W*N].
  void reduce_scatter(const engine::Tensor& input, engine::Tensor& output, engine::dist::ReduceOp op) override {
    engine::dist::detail::check_gather_sizes(name(), "reduce_scatter", output, input, world_size());
    engine::Tensor reduced = input.clone();
    all_reduce(reduced, op);
    engine::NoGradGuard no_grad;
    output.copy_(reduced.narrow(0, rank_ * output.numel(), output.numel()).view(output.shape()));
  }
  void barrier() override { group_.barrier(); }

 private:
  // Publishes `mine`, lets every rank compute its result from all published tensors, then writes
  // the result into `out` once no rank reads the published tensors any more.
  void exchange(const engine::Tensor& mine, const std::function<engine::Tensor()>& compute, engine::Tensor& out) {
    engine::NoGradGuard no_grad;
    group_.published(rank_) = &mine;
    group_.barrier();
    const engine::Tensor result = compute();
    group_.barrier();
    out.copy_(result);
  }

  ThreadGroup& group_;
  int rank_;
};

// Runs body(comm) on `world` threads, one communicator each; returns when all have finished.
inline void run_ranks(int world, const std::function<void(engine::dist::Communicator&)>& body) {
  ThreadGroup group(world);
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r)
    threads.emplace_back([&group, &body, r] {
      ThreadCommunicator comm(group, r);
      body(comm);
    });
  for (std::thread& t : threads) t.join();
}

}  // namespace thread_communicator
