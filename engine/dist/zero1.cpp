// Legend: N elements of a group's parameters, W world size, S = ceil(N / W) shard elements.
#include "engine/dist/zero1.h"

#include <string>
#include <utility>

#include "engine/autograd.h"
#include "engine/error.h"

namespace engine::dist {

Zero1DataParallel::Zero1DataParallel(Communicator& comm, std::vector<optim::ParamGroup> groups, int accumulation_steps)
    : comm_(comm), accumulation_steps_(accumulation_steps) {
  ENGINE_CHECK(accumulation_steps >= 1, "Zero1DataParallel: accumulation_steps must be at least 1, got ",
               accumulation_steps);
  NoGradGuard no_grad;
  const int64_t w = comm_.world_size();
  for (size_t g = 0; g < groups.size(); ++g) {
    FlatGroup flat{std::move(groups[g]), {}, {}, {}, {}};
    ENGINE_CHECK(!flat.group.params.empty(), "Zero1DataParallel: parameter group ", g, " is empty");
    const Tensor& first = flat.group.params.front().second;
    int64_t n = 0;
    for (auto& [name, p] : flat.group.params) {
      ENGINE_CHECK(p.defined() && p.is_contiguous() && is_floating(p.dtype()), "Zero1DataParallel: parameter ",
                   name, " must be a defined, contiguous floating tensor");
      ENGINE_CHECK(p.dtype() == first.dtype() && p.device() == first.device(), "Zero1DataParallel: parameter ",
                   name, " ", p.describe(), " differs in dtype or device from its group's first ", first.describe());
      comm_.broadcast(p, 0);
      n += p.numel();
    }
    const int64_t s = (n + w - 1) / w;
    flat.flat_params = Tensor::zeros({w * s}, first.dtype(), first.device());
    flat.flat_grads = Tensor::zeros({w * s}, first.dtype(), first.device());
    int64_t offset = 0;
    for (auto& [name, p] : flat.group.params) {
      flat.flat_params.narrow(0, offset, p.numel()).view(p.shape()).copy_(p);
      offset += p.numel();
    }
    flat.shard = flat.flat_params.narrow(0, comm_.rank() * s, s).clone();
    flat.shard.requires_grad_();
    flat.shard_grad = Tensor::empty({s}, first.dtype(), first.device());
    groups_.push_back(std::move(flat));
  }
}

std::vector<optim::ParamGroup> Zero1DataParallel::shard_groups() const {
  std::vector<optim::ParamGroup> shards;
  for (size_t g = 0; g < groups_.size(); ++g) {
    optim::ParamGroup shard;
    shard.params = {{"group" + std::to_string(g) + ".shard", groups_[g].shard}};
    shard.lr = groups_[g].group.lr;
    shard.weight_decay = groups_[g].group.weight_decay;
    shards.push_back(std::move(shard));
  }
  return shards;
}

bool Zero1DataParallel::reduce_gradients() {
  micro_step_ = (micro_step_ + 1) % accumulation_steps_;
  if (micro_step_ != 0) return false;
  NoGradGuard no_grad;
  for (FlatGroup& flat : groups_) {
    int64_t offset = 0;
    for (auto& [name, p] : flat.group.params) {
      const Tensor grad = p.grad();
      ENGINE_CHECK(grad.defined(), "Zero1DataParallel: parameter ", name, " ", p.describe(),
                   " has no gradient after backward; every rank must produce a gradient for every parameter");
      flat.flat_grads.narrow(0, offset, p.numel()).view(p.shape()).copy_(grad);
      p.set_grad(Tensor());
      offset += p.numel();
    }
    comm_.reduce_scatter(flat.flat_grads, flat.shard_grad, ReduceOp::average);
    flat.shard.set_grad(flat.shard_grad);
  }
  return true;
}

void Zero1DataParallel::gather_parameters() {
  NoGradGuard no_grad;
  for (FlatGroup& flat : groups_) {
    comm_.all_gather(flat.shard, flat.flat_params);
    int64_t offset = 0;
    for (auto& [name, p] : flat.group.params) {
      p.copy_(flat.flat_params.narrow(0, offset, p.numel()).view(p.shape()));
      offset += p.numel();
    }
  }
}

}  // namespace engine::dist
