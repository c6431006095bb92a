// Optimizers, schedules and gradient clipping against reference updates written out here in double,
// independently of engine/optim (the textbook forms: bias-corrected moments m̂ and v̂ for AdamW,
// torch's documented momentum recursion for SGD).
//
// The objective is a separable quadratic L(x) = ½ Σ a_i (x_i − c_i)², whose gradient a ⊙ (x − c)
// is computed here and set on the parameters, so these tests need no ops. The start is far from
// the minimum so that gradients stay away from zero over the steps taken.
#include <doctest/doctest.h>
#include <omp.h>

#include <cmath>
#include <vector>

#include "engine/allocator.h"
#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/optim/adamw.h"
#include "engine/optim/clip_grad.h"
#include "engine/optim/lr_schedule.h"
#include "engine/optim/sgd.h"
#include "engine/rng.h"
#include "engine/tensor.h"

using engine::Dtype;
using engine::Tensor;
using namespace engine::optim;

namespace {

struct Quadratic {
  std::vector<double> a, c;
  std::vector<double> grad(const std::vector<double>& x) const {
    std::vector<double> g(x.size());
    for (size_t i = 0; i < x.size(); ++i) g[i] = a[i] * (x[i] - c[i]);
    return g;
  }
};

// Sets param.grad to the quadratic's gradient at the parameter's current value.
void set_quadratic_grad(Tensor& param, const Quadratic& q) {
  param.set_grad(Tensor::from_vector(q.grad(param.to_vector<double>()), param.shape(), param.dtype()));
}

Tensor make_param(const std::vector<double>& values, const engine::Shape& shape, Dtype dtype) {
  Tensor p = Tensor::from_vector(values, shape, dtype);
  p.requires_grad_();
  return p;
}

// AdamW as written in Loshchilov & Hutter / the torch docs, one parameter vector, in double.
struct ReferenceAdamW {
  double lr, weight_decay, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  std::vector<double> m = {}, v = {};
  int t = 0;
  void step(std::vector<double>& p, const std::vector<double>& g) {
    if (m.empty()) m.assign(p.size(), 0.0), v.assign(p.size(), 0.0);
    ++t;
    for (size_t i = 0; i < p.size(); ++i) {
      m[i] = beta1 * m[i] + (1 - beta1) * g[i];
      v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
      const double m_hat = m[i] / (1 - std::pow(beta1, t));
      const double v_hat = v[i] / (1 - std::pow(beta2, t));
      p[i] = p[i] - lr * weight_decay * p[i] - lr * m_hat / (std::sqrt(v_hat) + eps);
    }
  }
};

// SGD as in the torch docs: b_1 = g_1, b_t = μ b_{t−1} + g_t, with g including L2 decay.
struct ReferenceSgd {
  double lr, weight_decay, momentum;
  bool nesterov;
  std::vector<double> b = {};
  void step(std::vector<double>& p, const std::vector<double>& grad) {
    const bool first = b.empty();
    if (first) b.assign(p.size(), 0.0);
    for (size_t i = 0; i < p.size(); ++i) {
      double g = grad[i] + weight_decay * p[i];
      if (momentum != 0) {
        b[i] = first ? g : momentum * b[i] + g;
        g = nesterov ? g + momentum * b[i] : b[i];
      }
      p[i] -= lr * g;
    }
  }
};

void check_close(const std::vector<double>& actual, const std::vector<double>& expected, double rtol, double atol) {
  REQUIRE(actual.size() == expected.size());
  for (size_t i = 0; i < actual.size(); ++i) {
    INFO("element ", i, ": ", actual[i], " vs ", expected[i]);
    CHECK(std::abs(actual[i] - expected[i]) <= atol + rtol * std::abs(expected[i]));
  }
}

const Quadratic quadratic{{0.5, 2.0, 1.0, 3.0, 0.25, 1.5}, {4.0, -3.0, 5.0, -6.0, 8.0, 7.0}};
const std::vector<double> start{-1.0, 2.0, -0.5, 1.0, 0.5, -2.0};

// A std::vector<Tensor> from a braced list, as clip_grad_norm takes.
std::vector<Tensor> tensors(std::initializer_list<Tensor> list) { return std::vector<Tensor>(list); }

}  // namespace

TEST_CASE("AdamW follows the reference trajectory on a quadratic, f64 and f32") {
  for (Dtype dtype : {Dtype::f64, Dtype::f32}) {
    CAPTURE(engine::dtype_name(dtype));
    Tensor x = make_param(start, {2, 3}, dtype);
    AdamW opt({ParamGroup{{{"x", x}}, 0.05, 0.1}}, AdamWOptions{.beta1 = 0.8, .beta2 = 0.95, .eps = 1e-6});
    ReferenceAdamW ref{.lr = 0.05, .weight_decay = 0.1, .beta1 = 0.8, .beta2 = 0.95, .eps = 1e-6};
    std::vector<double> expected = start;
    for (int step = 0; step < 25; ++step) {
      set_quadratic_grad(x, quadratic);
      ref.step(expected, quadratic.grad(expected));
      opt.step();
      opt.zero_grad();
      CHECK(!x.grad().defined());
    }
    CHECK(opt.step_count() == 25);
    // f64: only rounding differs (~1e-16 per operation). f32: ~6e-8 per operation over 25 steps.
    if (dtype == Dtype::f64) check_close(x.to_vector<double>(), expected, 1e-12, 1e-14);
    else check_close(x.to_vector<double>(), expected, 2e-5, 1e-6);
  }
}

TEST_CASE("AdamW weight decay is decoupled and per group") {
  // Group "decay" has weight decay, group "no_decay" has none and a different lr: each follows the
  // reference with its own hyperparameters.
  Tensor w = make_param({1.5, -2.0, 3.0, 0.5}, {2, 2}, Dtype::f64);
  Tensor b = make_param({0.25, -0.75}, {2}, Dtype::f64);
  const Quadratic qw{{1.0, 2.0, 0.5, 1.0}, {-2.0, 3.0, -1.0, 4.0}}, qb{{1.0, 3.0}, {2.0, 1.0}};
  AdamW opt({ParamGroup{{{"w", w}}, 0.01, 0.5}, ParamGroup{{{"b", b}}, 0.03, 0.0}});
  ReferenceAdamW ref_w{.lr = 0.01, .weight_decay = 0.5}, ref_b{.lr = 0.03, .weight_decay = 0.0};
  std::vector<double> expected_w = w.to_vector<double>(), expected_b = b.to_vector<double>();
  for (int step = 0; step < 10; ++step) {
    set_quadratic_grad(w, qw);
    set_quadratic_grad(b, qb);
    ref_w.step(expected_w, qw.grad(expected_w));
    ref_b.step(expected_b, qb.grad(expected_b));
    opt.step();
  }
  check_close(w.to_vector<double>(), expected_w, 1e-12, 1e-14);
  check_close(b.to_vector<double>(), expected_b, 1e-12, 1e-14);

  // With a zero gradient the moments stay zero and only the decay acts: p_t = p_0 (1 − lr·wd)^t,
  // not the L2 form, which would push the decay through the moments.
  Tensor p = make_param({2.0, -4.0}, {2}, Dtype::f64);
  AdamW decay_only({ParamGroup{{{"p", p}}, 0.1, 0.2}});
  for (int step = 0; step < 3; ++step) {
    p.set_grad(Tensor::zeros({2}, Dtype::f64));
    decay_only.step();
  }
  const double factor = std::pow(1 - 0.1 * 0.2, 3);
  check_close(p.to_vector<double>(), {2.0 * factor, -4.0 * factor}, 1e-15, 0);
}

TEST_CASE("weight_decay_groups decays matrices only") {
  Tensor weight = make_param({1, 2, 3, 4}, {2, 2}, Dtype::f32), bias = make_param({1, 2}, {2}, Dtype::f32);
  const std::vector<ParamGroup> groups = weight_decay_groups({{"fc.weight", weight}, {"fc.bias", bias}}, 3e-4, 0.1);
  REQUIRE(groups.size() == 2);
  CHECK(groups[0].params.size() == 1);
  CHECK(groups[0].params[0].first == "fc.weight");
  CHECK(groups[0].weight_decay == 0.1);
  CHECK(groups[1].params[0].first == "fc.bias");
  CHECK(groups[1].weight_decay == 0.0);
  CHECK(groups[1].lr == 3e-4);
  CHECK(weight_decay_groups({{"fc.bias", bias}}, 3e-4, 0.1).size() == 1);
}

TEST_CASE("SGD follows the reference trajectory: plain, momentum, nesterov, weight decay") {
  struct Case { double momentum; bool nesterov; double weight_decay; };
  for (Case c : {Case{0.0, false, 0.0}, Case{0.9, false, 0.0}, Case{0.9, true, 0.05}, Case{0.5, false, 0.1}}) {
    for (Dtype dtype : {Dtype::f64, Dtype::f32}) {
      CAPTURE(c.momentum);
      CAPTURE(c.nesterov);
      CAPTURE(engine::dtype_name(dtype));
      Tensor x = make_param(start, {6}, dtype);
      Sgd opt({ParamGroup{{{"x", x}}, 0.02, c.weight_decay}}, SgdOptions{.momentum = c.momentum, .nesterov = c.nesterov});
      ReferenceSgd ref{.lr = 0.02, .weight_decay = c.weight_decay, .momentum = c.momentum, .nesterov = c.nesterov};
      std::vector<double> expected = start;
      for (int step = 0; step < 20; ++step) {
        set_quadratic_grad(x, quadratic);
        ref.step(expected, quadratic.grad(expected));
        opt.step();
      }
      if (dtype == Dtype::f64) check_close(x.to_vector<double>(), expected, 1e-12, 1e-14);
      else check_close(x.to_vector<double>(), expected, 1e-5, 1e-6);
    }
  }
  Tensor x = make_param(start, {6}, Dtype::f64);
  CHECK_THROWS_WITH_AS(Sgd({ParamGroup{{{"x", x}}, 0.1, 0}}, SgdOptions{.momentum = 0, .nesterov = true}),
                       doctest::Contains("nesterov needs momentum"), engine::Error);
}

TEST_CASE("optimizers skip parameters without gradients and refuse bad ones") {
  Tensor x = make_param({1.0, 2.0}, {2}, Dtype::f64);
  Tensor y = make_param({3.0, 4.0}, {2}, Dtype::f64);
  AdamW opt({ParamGroup{{{"x", x}, {"y", y}}, 0.1, 0.0}});
  x.set_grad(Tensor::from_vector({0.5, -0.5}, {2}, Dtype::f64));
  opt.step();
  CHECK(y.to_vector<double>() == std::vector<double>{3.0, 4.0});
  CHECK(x.to_vector<double>() != std::vector<double>{1.0, 2.0});

  y.set_grad(Tensor::ones({3}, Dtype::f64));
  CHECK_THROWS_WITH_AS(opt.step(), doctest::Contains("gradient of 'y' is f64[3] on cpu but the parameter is f64[2]"),
                       engine::Error);
  CHECK(opt.step_count() == 1);  // the failed step changed nothing
  CHECK_THROWS_WITH_AS(AdamW({ParamGroup{{{"x", x}}, 0.1, 0.0}, ParamGroup{{{"x", x}}, 0.1, 0.0}}),
                       doctest::Contains("parameter name 'x' appears twice"), engine::Error);
  Tensor wide = make_param({1, 2, 3, 4, 5, 6}, {2, 3}, Dtype::f64);
  CHECK_THROWS_WITH_AS(Sgd({ParamGroup{{{"t", wide.detach().transpose(0, 1)}}, 0.1, 0.0}}),
                       doctest::Contains("'t' (f64[3, 2] on cpu) is not contiguous"), engine::Error);
}

TEST_CASE("AdamW and SGD steps allocate nothing") {
  Tensor w = make_param(start, {2, 3}, Dtype::f32);
  Tensor v = make_param(start, {2, 3}, Dtype::f32);
  AdamW adamw({ParamGroup{{{"w", w}}, 0.01, 0.1}});
  Sgd sgd({ParamGroup{{{"v", v}}, 0.01, 0.1}}, SgdOptions{.momentum = 0.9});
  set_quadratic_grad(w, quadratic);
  set_quadratic_grad(v, quadratic);
  const uint64_t before = engine::cpu_allocator().stats().allocations;
  for (int step = 0; step < 3; ++step) {
    adamw.step();
    sgd.step();
  }
  CHECK(engine::cpu_allocator().stats().allocations == before);
}

TEST_CASE("state_dict round trip continues the identical trajectory") {
  const LrSchedule schedule(LrScheduleConfig{.decay = LrDecay::cosine, .warmup_steps = 3, .total_steps = 12});
  // Makes `steps` scheduled steps of `opt` on the quadratic at x.
  auto run = [&](Optimizer& opt, Tensor& x, int steps) {
    for (int s = 0; s < steps; ++s) {
      schedule.apply(opt);
      set_quadratic_grad(x, quadratic);
      opt.step();
      opt.zero_grad();
    }
  };
  auto make_adamw = [](Tensor& x) -> std::unique_ptr<Optimizer> {
    return std::make_unique<AdamW>(std::vector<ParamGroup>{ParamGroup{{{"x", x}}, 0.05, 0.01}});
  };
  auto make_sgd = [](Tensor& x) -> std::unique_ptr<Optimizer> {
    return std::make_unique<Sgd>(std::vector<ParamGroup>{ParamGroup{{{"x", x}}, 0.05, 0.01}},
                                 SgdOptions{.momentum = 0.9, .nesterov = true});
  };
  for (auto make : {+make_adamw, +make_sgd}) {
    Tensor straight = make_param(start, {6}, Dtype::f32);
    std::unique_ptr<Optimizer> uninterrupted = make(straight);
    CAPTURE(uninterrupted->name());
    run(*uninterrupted, straight, 10);

    Tensor first = make_param(start, {6}, Dtype::f32);
    std::unique_ptr<Optimizer> before = make(first);
    run(*before, first, 4);
    std::map<std::string, Tensor> saved;
    for (auto& [key, tensor] : before->state_dict()) saved[key] = tensor.clone();
    CHECK(saved.at("step").item() == 4);

    Tensor resumed = make_param(first.to_vector<double>(), {6}, Dtype::f32);
    std::unique_ptr<Optimizer> after = make(resumed);
    after->load_state_dict(saved);
    CHECK(after->step_count() == 4);
    run(*after, resumed, 6);
    CHECK(resumed.to_vector<float>() == straight.to_vector<float>());  // bitwise
  }
}

TEST_CASE("load_state_dict names the tensor at fault") {
  Tensor x = make_param(start, {2, 3}, Dtype::f64);
  AdamW opt({ParamGroup{{{"layer.weight", x}}, 0.1, 0.0}});
  std::map<std::string, Tensor> state = opt.state_dict();
  CHECK(state.size() == 3);

  std::map<std::string, Tensor> missing = state;
  missing.erase("layer.weight.exp_avg_sq");
  CHECK_THROWS_WITH_AS(opt.load_state_dict(missing), doctest::Contains("missing tensor 'layer.weight.exp_avg_sq'"),
                       engine::Error);
  std::map<std::string, Tensor> wrong_shape = state;
  wrong_shape["layer.weight.exp_avg"] = Tensor::zeros({3, 2}, Dtype::f64);
  CHECK_THROWS_WITH_AS(
      opt.load_state_dict(wrong_shape),
      doctest::Contains("tensor 'layer.weight.exp_avg' has shape [3, 2] but parameter 'layer.weight' has shape [2, 3]"),
      engine::Error);
  std::map<std::string, Tensor> extra = state;
  extra["other.exp_avg"] = Tensor::zeros({2}, Dtype::f64);
  CHECK_THROWS_WITH_AS(opt.load_state_dict(extra), doctest::Contains("unexpected tensor 'other.exp_avg'"),
                       engine::Error);
  CHECK_THROWS_WITH_AS(Sgd({ParamGroup{{{"layer.weight", x}}, 0.1, 0.0}}, SgdOptions{.momentum = 0.9})
                           .load_state_dict(state),
                       doctest::Contains("missing tensor 'layer.weight.momentum_buffer'"), engine::Error);
}

TEST_CASE("linear warm-up then linear decay, as HF get_linear_schedule_with_warmup") {
  const LrSchedule hf(LrScheduleConfig{.decay = LrDecay::linear, .warmup_steps = 10, .total_steps = 100});
  const double base = 1e-3;
  CHECK(hf.lr_at(0, base) == 0.0);                             // warm-up start
  CHECK(hf.lr_at(5, base) == doctest::Approx(5e-4).epsilon(1e-12));
  CHECK(hf.lr_at(10, base) == doctest::Approx(1e-3).epsilon(1e-12));   // warm-up end: the base rate
  CHECK(hf.lr_at(55, base) == doctest::Approx(5e-4).epsilon(1e-12));   // (100 − 55) / 90 = 1/2
  CHECK(hf.lr_at(100, base) == 0.0);                           // end
  CHECK(hf.lr_at(130, base) == 0.0);                           // and after it

  const LrSchedule with_floor(
      LrScheduleConfig{.decay = LrDecay::linear, .warmup_steps = 10, .total_steps = 100, .min_lr = 1e-4});
  CHECK(with_floor.lr_at(55, base) == doctest::Approx(5.5e-4).epsilon(1e-12));  // 1e-4 + 9e-4 / 2
  CHECK(with_floor.lr_at(100, base) == doctest::Approx(1e-4).epsilon(1e-12));
}

TEST_CASE("cosine decay with warmup_lr_init, as timm CosineLRScheduler") {
  // timm defaults (warmup_prefix=False): the cosine is measured from step 0 over t_initial = 100.
  const LrSchedule timm(LrScheduleConfig{.decay = LrDecay::cosine, .warmup_steps = 10, .total_steps = 100,
                                         .warmup_lr_init = 1e-6, .min_lr = 1e-5, .warmup_prefix = false});
  const double base = 1e-3;
  CHECK(timm.lr_at(0, base) == doctest::Approx(1e-6).epsilon(1e-12));
  CHECK(timm.lr_at(5, base) == doctest::Approx(5.005e-4).epsilon(1e-12));  // 1e-6 + 0.999e-3 / 2
  // 1e-5 + 0.99e-3 (1 + cos(0.1 π)) / 2, cos(0.1 π) = 0.9510565162951535
  CHECK(timm.lr_at(10, base) == doctest::Approx(9.757729755661011e-4).epsilon(1e-12));
  CHECK(timm.lr_at(50, base) == doctest::Approx(5.05e-4).epsilon(1e-12));  // the cosine's midpoint
  CHECK(timm.lr_at(75, base) == doctest::Approx(1.54982143312659e-4).epsilon(1e-12));  // cos(0.75 π)
  CHECK(timm.lr_at(100, base) == doctest::Approx(1e-5).epsilon(1e-12));
  CHECK(timm.lr_at(250, base) == doctest::Approx(1e-5).epsilon(1e-12));

  // HF's cosine: decay over [warmup, total], so the midpoint is at step 60.
  const LrSchedule hf_cosine(LrScheduleConfig{.decay = LrDecay::cosine, .warmup_steps = 10, .total_steps = 110});
  CHECK(hf_cosine.lr_at(10, base) == doctest::Approx(1e-3).epsilon(1e-12));
  CHECK(hf_cosine.lr_at(60, base) == doctest::Approx(5e-4).epsilon(1e-12));
  CHECK(hf_cosine.lr_at(110, base) == doctest::Approx(0.0));

  CHECK_THROWS_WITH_AS(LrSchedule(LrScheduleConfig{.warmup_steps = 10, .total_steps = 10}),
                       doctest::Contains("total_steps (10) must exceed"), engine::Error);
}

TEST_CASE("schedule apply sets each group's rate from its base and the step count") {
  Tensor a = make_param({1.0}, {1}, Dtype::f64), b = make_param({2.0}, {1}, Dtype::f64);
  Sgd opt({ParamGroup{{{"a", a}}, 0.1, 0.0}, ParamGroup{{{"b", b}}, 0.4, 0.0}});
  const LrSchedule schedule(LrScheduleConfig{.decay = LrDecay::linear, .warmup_steps = 4, .total_steps = 8});
  std::vector<double> lr_a, lr_b;
  for (int step = 0; step < 6; ++step) {
    schedule.apply(opt);
    lr_a.push_back(opt.param_groups()[0].lr);
    lr_b.push_back(opt.param_groups()[1].lr);
    a.set_grad(Tensor::ones({1}, Dtype::f64));
    opt.step();
  }
  check_close(lr_a, {0.0, 0.025, 0.05, 0.075, 0.1, 0.075}, 1e-14, 1e-16);
  check_close(lr_b, {0.0, 0.1, 0.2, 0.3, 0.4, 0.3}, 1e-14, 1e-16);
  // a moved by the sum of its rates times the unit gradient.
  check_close(a.to_vector<double>(), {1.0 - 0.325}, 1e-14, 1e-16);
}

TEST_CASE("clip_grad_norm on known vectors") {
  Tensor x = make_param({1.0, 1.0}, {2}, Dtype::f64);
  Tensor y = make_param({1.0}, {1}, Dtype::f32);
  Tensor no_grad = make_param({1.0}, {1}, Dtype::f64);
  x.set_grad(Tensor::from_vector({3.0, 4.0}, {2}, Dtype::f64));
  y.set_grad(Tensor::from_vector({12.0}, {1}, Dtype::f32));

  // ‖(3, 4, 12)‖ = 13: below max_norm nothing changes.
  CHECK(clip_grad_norm(tensors({x, y, no_grad}), 20.0).item() == doctest::Approx(13.0).epsilon(1e-15));
  CHECK(x.grad().to_vector<double>() == std::vector<double>{3.0, 4.0});

  // Above it, every gradient is scaled by max_norm / (norm + 1e-6).
  CHECK(clip_grad_norm(tensors({x, y, no_grad}), 6.5).item() == doctest::Approx(13.0).epsilon(1e-15));
  const double coef = 6.5 / (13.0 + 1e-6);
  check_close(x.grad().to_vector<double>(), {3.0 * coef, 4.0 * coef}, 1e-15, 0);
  check_close(y.grad().to_vector<double>(), {12.0 * coef}, 1e-7, 0);  // f32 rounding of the product
  CHECK(clip_grad_norm(tensors({x, y}), 100.0).item() == doctest::Approx(6.5).epsilon(1e-6));

  CHECK_THROWS_WITH_AS(clip_grad_norm(tensors({x}), 0.0), doctest::Contains("max_norm must be positive"),
                       engine::Error);
}

TEST_CASE("clip_grad_norm is exact and independent of the thread count") {
  engine::Generator gen(7);
  Tensor big = make_param(std::vector<double>(100003, 1.0), {100003}, Dtype::f32);
  big.set_grad(Tensor::randn({100003}, gen, Dtype::f32));
  double expected_sq = 0;  // serial double sum: the chunked sum differs only in rounding order
  for (float g : big.grad().to_vector<float>()) expected_sq += double(g) * double(g);

  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const double one_thread = clip_grad_norm(tensors({big}), 1e9).item();
  omp_set_num_threads(2);
  const double two_threads = clip_grad_norm(tensors({big}), 1e9).item();
  omp_set_num_threads(threads);
  CHECK(one_thread == two_threads);
  CHECK(one_thread == doctest::Approx(std::sqrt(expected_sq)).epsilon(1e-13));
}

namespace {

// A stand-in CUDA backend that only hands out (host) memory, so that a tensor can claim to live on
// a GPU and the optimizers' device checks can be tested without one.
class HostMemoryCudaBackend final : public engine::Backend {
 public:
  engine::Allocator& allocator(int) override { return engine::cpu_allocator(); }
  void copy_bytes(void*, engine::Device, const void*, engine::Device, size_t) override { unused(); }
  void fill(const Tensor&, double) override { unused(); }
  void copy(const Tensor&, const Tensor&) override { unused(); }
  void add_into(const Tensor&, const Tensor&) override { unused(); }
  void sum_to(const Tensor&, const Tensor&) override { unused(); }
  void fill_random(const Tensor&, const engine::RandomSpec&, uint64_t, uint64_t) override { unused(); }
  void adamw_update(std::span<const Tensor>, std::span<const Tensor>, std::span<const Tensor>,
                    std::span<const Tensor>, const engine::AdamWStep&) override { unused(); }
  void sgd_update(std::span<const Tensor>, std::span<const Tensor>, std::span<const Tensor>,
                  const engine::SgdStep&) override { unused(); }
  void squared_norm(std::span<const Tensor>, const Tensor&) override { unused(); }
  void clip_by_norm_(std::span<const Tensor>, const Tensor&, double, const Tensor&) override { unused(); }
  void synchronize() override {}

 private:
  [[noreturn]] static void unused() { throw engine::Error("HostMemoryCudaBackend: not part of this test"); }
};

}  // namespace

TEST_CASE("optimizers and clipping refuse parameters and gradients on several devices") {
  static HostMemoryCudaBackend backend;  // outlives the tensors allocated through it
  engine::register_backend(engine::DeviceType::cuda, &backend);
  {
    Tensor on_cpu = make_param({1.0, 2.0}, {2}, Dtype::f32);
    Tensor on_gpu = Tensor::empty({4}, Dtype::f32, engine::Device::cuda(0));
    on_gpu.requires_grad_();
    CHECK_THROWS_WITH_AS(AdamW({ParamGroup{{{"a", on_cpu}}, 0.1, 0.0}, ParamGroup{{{"w", on_gpu}}, 0.1, 0.0}}),
                         doctest::Contains("AdamW: parameter 'w' is f32[4] on cuda:0 but parameter 'a' is on cpu; "
                                           "all parameters of one optimizer must be on one device"),
                         engine::Error);
    CHECK_THROWS_WITH_AS(Sgd({ParamGroup{{{"a", on_cpu}, {"w", on_gpu}}, 0.1, 0.0}}),
                         doctest::Contains("SGD: parameter 'w' is f32[4] on cuda:0 but parameter 'a' is on cpu"),
                         engine::Error);

    // A gradient on another device than its parameter is refused before anything changes.
    Sgd sgd({ParamGroup{{{"a", on_cpu}}, 0.1, 0.0}});
    on_cpu.set_grad(Tensor::empty({2}, Dtype::f32, engine::Device::cuda(0)));
    CHECK_THROWS_WITH_AS(sgd.step(),
                         doctest::Contains("gradient of 'a' is f32[2] on cuda:0 but the parameter is f32[2] on cpu"),
                         engine::Error);
    CHECK(sgd.step_count() == 0);

    on_cpu.set_grad(Tensor::from_vector({3.0, 4.0}, {2}, Dtype::f32));
    on_gpu.set_grad(Tensor::empty({4}, Dtype::f32, engine::Device::cuda(0)));
    CHECK_THROWS_WITH_AS(clip_grad_norm(tensors({on_cpu, on_gpu}), 1.0),
                         doctest::Contains("clip_grad_norm: gradient of params[1] is f32[4] on cuda:0 but that of "
                                           "params[0] is on cpu; clip the gradients of each device apart"),
                         engine::Error);
    CHECK(on_cpu.grad().to_vector<double>() == std::vector<double>{3.0, 4.0});
  }
  engine::register_backend(engine::DeviceType::cuda, nullptr);
}
