// Attention op: checks, device dispatch and the backward node. Kernels: ops/cpu/attention.h and
// ops/cuda/attention.h.
//
//   B = batch, H = heads, Tq / Tk = query / key lengths, Dk = query/key head size, Dv = value head size
#include "ops/attention.h"

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <set>
#include <vector>

#include "engine/autograd.h"
#include "ops/cpu/attention.h"
#include "ops/cuda_kernels.h"
#include "ops/precision.h"
#include "ops/reduce.h"

namespace ops {

namespace {

// Everything the kernels need besides the tensors, kept by the backward node.
struct AttentionConfig {
  cpu::AttentionSizes sizes;
  double scale = 1.0;
  bool causal = false;
  std::vector<double> alibi_slopes;  // (H), or empty
  Tensor device_alibi_slopes;        // (H) f64 on the inputs' device (CUDA only), or undefined
  Tensor key_keep;                   // (B, Tk) i32 0/1 on the inputs' device, or undefined
  cpu::AttentionDropout dropout;     // p = 0: none
  Tensor score_bias;                 // (P, Hb, Tq, Tk) dense, detached, or undefined
  std::string cudnn_request;         // how the call asked for cuDNN (for messages); empty: it did not
  bool use_cudnn = false;            // asked for cuDNN, and cuDNN's graph can express the call
  bool cudnn = false;                // the forward ran through cuDNN, so the backward tries it too
  Tensor cudnn_alibi_slopes;         // (H) f32 on the device: ALiBi through cuDNN, else undefined
  bool bf16_products = false;        // f32 on the CPU in bf16 precision: the forward's, kept for the backward
};

std::atomic<AttentionBackend>& backend_choice() {
  static std::atomic<AttentionBackend> choice{[] {
    const char* env = std::getenv("ENGINE_ATTENTION_CUDNN");
    if (env && std::strcmp(env, "1") == 0) return AttentionBackend::cudnn_bf16;
    if (env && std::strcmp(env, "0") == 0) return AttentionBackend::kernel;
    return AttentionBackend::automatic;
  }()};
  return choice;
}

std::atomic<bool>& fallback_choice() {
  static std::atomic<bool> allowed{[] {
    const char* env = std::getenv("ENGINE_ATTENTION_FALLBACK");
    return env && std::strcmp(env, "1") == 0;
  }()};
  return allowed;
}

// Prints `message` on stderr the first time it is given in this process.
void say_once(const std::string& message) {
  static std::mutex mutex;
  static std::set<std::string> said;
  const std::lock_guard<std::mutex> lock(mutex);
  if (said.insert(message).second) std::fprintf(stderr, "engine: attention: %s\n", message.c_str());
}

// How an f32 CUDA call asks for cuDNN, for the messages; "" when it does not.
std::string cudnn_request(const Tensor& q) {
  if (!q.device().is_cuda() || q.dtype() != engine::Dtype::f32 || !cudnn_attention_requested()) return "";
  return attention_backend() == AttentionBackend::cudnn_bf16
             ? "--attention cudnn or ENGINE_ATTENTION_CUDNN=1"
             : "cuDNN is the default attention on GPUs with --precision bf16";
}

// cuDNN was asked for (`request`) and could express the call, but failed with `what`: stops the run
// unless the fallback is allowed, then says it once per reason and returns (the kernel runs).
void cudnn_refused(const std::string& request, const std::string& what) {
  if (!attention_fallback())
    throw engine::Error("attention: cuDNN attention was asked for (" + request + ") but cannot run: " + what +
                        ". Pass --attention-fallback (or set ENGINE_ATTENTION_FALLBACK=1) to run the hand-written f32 "
                        "kernel instead, or --attention kernel (ENGINE_ATTENTION_CUDNN=0) not to ask for cuDNN.");
  say_once("cuDNN attention cannot run, so the hand-written kernel does (--attention-fallback): " + what);
}

// The bias as the kernels of `config`'s device take it (slopes in host memory for the CPU, in
// device memory for CUDA).
cpu::AttentionBias kernel_bias(const AttentionConfig& config) {
  cpu::AttentionBias bias;
  bias.scale = config.scale;
  bias.causal = config.causal;
  if (config.device_alibi_slopes.defined())
    bias.alibi_slopes = config.device_alibi_slopes.data<double>();
  else if (!config.alibi_slopes.empty())
    bias.alibi_slopes = config.alibi_slopes.data();
  bias.key_keep = config.key_keep.defined() ? config.key_keep.data<int32_t>() : nullptr;
  bias.dropout = config.dropout;
  bias.bf16_products = config.bf16_products;
  if (config.score_bias.defined()) {
    bias.score_bias = config.score_bias.raw_data();
    bias.score_bias_blocks = config.score_bias.size(0);
    bias.score_bias_per_head = config.score_bias.size(1) == config.sizes.heads;
  }
  return bias;
}

// The CPU kernels and cuDNN read any (B, H, T, D) view whose rows are contiguous (a linear layer's
// output split into heads) and write results as (B, H, T, D) views of (B, T, H, D) buffers, the
// layout the next linear layer reads, so no copy is made on either side. The CUDA kernels take
// dense (B, H, T, D).
Tensor readable(const Tensor& x, bool rows_in_place) {
  return rows_in_place && x.strides()[3] == 1 ? x : x.contiguous();
}

// An empty (B, H, T, D) result: a view of a (B, T, H, D) buffer when `heads_view`, else dense.
Tensor empty_heads(int64_t B, int64_t H, int64_t T, int64_t D, const Tensor& like, bool heads_view) {
  if (heads_view) return Tensor::empty({B, T, H, D}, like.dtype(), like.device()).permute({0, 2, 1, 3});
  return Tensor::empty({B, H, T, D}, like.dtype(), like.device());
}

// Whether the tensors of a call sit in the layouts above (CPU, or CUDA through cuDNN).
bool rows_in_place(const Tensor& like, bool cudnn) { return like.device().is_cpu() || cudnn; }

// Runs `kernel` on dense copies of `outputs` where they are views, copying the results back.
template <typename F>
void into_dense(const std::vector<Tensor>& outputs, F&& kernel) {
  std::vector<Tensor> dense;
  for (const Tensor& x : outputs)
    dense.push_back(x.is_contiguous() ? x : Tensor::empty(x.shape(), x.dtype(), x.device()));
  kernel(dense);
  for (size_t i = 0; i < outputs.size(); ++i) {
    Tensor target = outputs[i];  // a handle to the same storage
    if (!target.is_contiguous()) target.copy_(dense[i]);
  }
}

cpu::RowLayout rows_of(const Tensor& x) { return {x.strides()[0], x.strides()[1], x.strides()[2]}; }

// The one place where attention picks a device for its forward kernels (and, for f32 on CUDA
// when asked for and expressible, cuDNN; config.cudnn records whether it ran).
template <typename T>
void run_forward(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k, const Tensor& v,
                 AttentionConfig& config) {
  if (q.device().is_cuda()) {
    if (config.use_cudnn) {
      try {
        cuda::attention_forward_cudnn(out, lse, q, k, v, config.cudnn_alibi_slopes, config.sizes, kernel_bias(config));
        config.cudnn = true;
        return;
      } catch (const engine::Error& e) {
        cudnn_refused(config.cudnn_request, e.what());
      }
    }
    into_dense({out}, [&](const std::vector<Tensor>& dense) {
      cuda::attention_forward(dense[0], lse, q.contiguous(), k.contiguous(), v.contiguous(), config.sizes,
                              kernel_bias(config));
    });
    return;
  }
  cpu::AttentionLayouts layouts;  // the forward has no gradient operands
  layouts.q = rows_of(q);
  layouts.k = rows_of(k);
  layouts.v = rows_of(v);
  layouts.out = rows_of(out);
  cpu::attention_forward<T>(out.data<T>(), lse.data<T>(), q.data<T>(), k.data<T>(), v.data<T>(), config.sizes,
                            kernel_bias(config), layouts);
}

// The one place where attention picks a device for its backward kernels.
// `bias_grad` is (P, H, Tq, Tk) zeros when the score bias needs a gradient, else undefined.
template <typename T>
void run_backward(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& bias_grad, const Tensor& dout,
                  const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,
                  const AttentionConfig& config) {
  cpu::AttentionBias bias = kernel_bias(config);
  if (bias_grad.defined()) bias.score_bias_grad = bias_grad.raw_data();
  if (q.device().is_cuda()) {
    if (config.cudnn) {
      try {
        cuda::attention_backward_cudnn(dq, dk, dv, dout, q, k, v, out, lse, config.cudnn_alibi_slopes, config.sizes,
                                       bias);
        return;
      } catch (const engine::Error& e) {
        cudnn_refused(config.cudnn_request, e.what());
      }
    }
    into_dense({dq, dk, dv}, [&](const std::vector<Tensor>& dense) {
      cuda::attention_backward(dense[0], dense[1], dense[2], dout.contiguous(), q.contiguous(), k.contiguous(),
                               v.contiguous(), out.contiguous(), lse, config.sizes, bias);
    });
    return;
  }
  const cpu::AttentionLayouts layouts{rows_of(q),    rows_of(k),  rows_of(v),  rows_of(out),
                                      rows_of(dout), rows_of(dq), rows_of(dk), rows_of(dv)};
  cpu::attention_backward<T>(dq.data<T>(), dk.data<T>(), dv.data<T>(), dout.data<T>(), q.data<T>(), k.data<T>(),
                             v.data<T>(), out.data<T>(), lse.data<T>(), config.sizes, bias, layouts);
}

// Gradients of q, k, v and the score bias; the probabilities are recomputed from the saved
// log-sum-exp.
class AttentionBackward final : public engine::Node {
 public:
  AttentionBackward(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, AttentionConfig config, bool bias_grad)
      : q_(std::move(q)), k_(std::move(k)), v_(std::move(v)), out_(std::move(out)), lse_(std::move(lse)),
        config_(std::move(config)), bias_grad_(bias_grad) {}
  std::string name() const override { return "AttentionBackward"; }

  std::vector<Tensor> apply(std::vector<Tensor>& grads) override {
    ENGINE_CHECK(q_.defined(), "attention: backward called twice through the same graph");
    const bool in_place = rows_in_place(q_, config_.cudnn);
    const Tensor dout = readable(grads[0], in_place);
    const int64_t B = q_.size(0), H = q_.size(1);
    Tensor dq = empty_heads(B, H, q_.size(2), q_.size(3), q_, in_place);
    Tensor dk = empty_heads(B, H, k_.size(2), k_.size(3), k_, in_place);
    Tensor dv = empty_heads(B, H, v_.size(2), v_.size(3), v_, in_place);
    // (P, H, Tq, Tk): summed over each block's sequences by the kernels, over heads here when Hb = 1.
    Tensor dbias;
    if (bias_grad_)
      dbias = Tensor::zeros({config_.score_bias.size(0), H, q_.size(2), k_.size(2)}, q_.dtype(), q_.device());
    ENGINE_DISPATCH_FLOAT(q_.dtype(), "attention backward",
                          [&] { run_backward<scalar_t>(dq, dk, dv, dbias, dout, q_, k_, v_, out_, lse_, config_); });
    if (bias_grad_ && config_.score_bias.size(1) != H) dbias = sum(dbias, {1}, true);
    return {dq, dk, dv, dbias};
  }

  void release_saved() override {
    q_ = k_ = v_ = out_ = lse_ = Tensor();
    config_.key_keep = config_.device_alibi_slopes = config_.score_bias = config_.cudnn_alibi_slopes = Tensor();
  }

 private:
  Tensor q_, k_, v_;  // detached, as the forward read them (readable())
  Tensor out_;        // (B, H, Tq, Dv), detached (no cycle through its grad_fn)
  Tensor lse_;        // (B, H, Tq)
  AttentionConfig config_;
  bool bias_grad_;    // the score bias requires grad
};

// Checks the shapes, dtypes and devices of the inputs and options; throws naming the culprit.
void check_inputs(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& options) {
  ENGINE_CHECK(q.defined() && k.defined() && v.defined(), "attention: q, k and v must all be defined");
  ENGINE_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4,
               "attention: q, k and v must be 4-D (B, H, T, D); got q ", q.describe(), ", k ", k.describe(),
               ", v ", v.describe());
  engine::check_same_device("attention", {&q, &k, &v});
  engine::check_same_dtype("attention", {&q, &k, &v});
  ENGINE_CHECK(engine::is_floating(q.dtype()), "attention: q, k and v must be f32 or f64, got ", q.describe());
  ENGINE_CHECK(k.size(0) == q.size(0) && v.size(0) == q.size(0) && k.size(1) == q.size(1) && v.size(1) == q.size(1),
               "attention: q, k and v must share batch and heads (B, H); got q ", q.describe(), ", k ",
               k.describe(), ", v ", v.describe());
  ENGINE_CHECK(k.size(2) == v.size(2), "attention: k and v must have the same number of keys Tk; got k ",
               k.describe(), ", v ", v.describe());
  ENGINE_CHECK(k.size(3) == q.size(3), "attention: q and k must have the same head size Dk; got q ", q.describe(),
               ", k ", k.describe());
  ENGINE_CHECK(q.size(3) > 0, "attention: the head size Dk of q and k must be positive; got q ", q.describe());
  ENGINE_CHECK(std::isfinite(options.scale), "attention: scale must be finite, got ", options.scale);

  const Tensor& slopes = options.alibi_slopes;
  if (slopes.defined()) {
    ENGINE_CHECK(slopes.dim() == 1 && slopes.size(0) == q.size(1), "attention: alibi_slopes must be (H) = (",
                 q.size(1), "), got ", slopes.describe());
    ENGINE_CHECK(engine::is_floating(slopes.dtype()), "attention: alibi_slopes must be f32 or f64, got ",
                 slopes.describe());
    ENGINE_CHECK(slopes.device() == q.device(), "attention: alibi_slopes is ", slopes.describe(),
                 " but q is ", q.describe());
    ENGINE_CHECK(!slopes.requires_grad(), "attention: alibi_slopes are fixed and get no gradient; pass a tensor "
                 "that does not require grad (detach it)");
  }
  const Tensor& mask = options.key_mask;
  if (mask.defined()) {
    ENGINE_CHECK(mask.dim() == 2 && mask.size(0) == q.size(0) && mask.size(1) == k.size(2),
                 "attention: key_mask must be (B, Tk) = (", q.size(0), ", ", k.size(2), "), got ", mask.describe());
    ENGINE_CHECK(mask.device() == q.device(), "attention: key_mask is ", mask.describe(), " but q is ",
                 q.describe());
  }
  ENGINE_CHECK(options.dropout_p >= 0.0 && options.dropout_p <= 1.0, "attention: dropout_p must be in [0, 1], got ",
               options.dropout_p);
  ENGINE_CHECK(options.dropout_p == 0.0 || options.dropout_gen,
               "attention: dropout_p = ", options.dropout_p, " needs a generator (dropout_gen) to draw the mask");
  const Tensor& bias = options.score_bias;
  if (bias.defined()) {
    ENGINE_CHECK(bias.dim() == 4 && bias.size(0) > 0 && q.size(0) % bias.size(0) == 0 &&
                     (bias.size(1) == 1 || bias.size(1) == q.size(1)) && bias.size(2) == q.size(2) &&
                     bias.size(3) == k.size(2),
                 "attention: score_bias must be (P, 1 or H, Tq, Tk) with P dividing the batch B = ", q.size(0),
                 ", H = ", q.size(1), ", Tq = ", q.size(2), ", Tk = ", k.size(2), "; got ", bias.describe());
    ENGINE_CHECK(bias.dtype() == q.dtype() && bias.device() == q.device(), "attention: score_bias is ",
                 bias.describe(), " but q is ", q.describe(), "; give it q's dtype and device");
  }
}

// Key mask of any dtype as i32 0/1 flags: nonzero keeps the key.
Tensor key_keep_flags(const Tensor& key_mask) {
  const std::vector<double> values = key_mask.to_vector<double>();
  std::vector<int64_t> flags(values.size());
  for (size_t i = 0; i < values.size(); ++i) flags[i] = values[i] != 0.0 ? 1 : 0;
  return Tensor::from_indices(flags, key_mask.shape(), engine::Dtype::i32, key_mask.device());
}

}  // namespace

void set_attention_backend(AttentionBackend backend) { backend_choice().store(backend); }
AttentionBackend attention_backend() { return backend_choice().load(); }

AttentionBackend parse_attention_backend(const std::string& text, const std::string& option) {
  if (text == "auto") return AttentionBackend::automatic;
  if (text == "kernel") return AttentionBackend::kernel;
  if (text == "cudnn") return AttentionBackend::cudnn_bf16;
  throw engine::Error(option + " must be auto, kernel or cudnn, got '" + text + "'");
}

const char* attention_backend_name(AttentionBackend backend) {
  switch (backend) {
    case AttentionBackend::automatic: return "auto";
    case AttentionBackend::kernel: return "kernel";
    case AttentionBackend::cudnn_bf16: return "cudnn";
  }
  return "?";
}

bool cudnn_attention_requested() {
  const AttentionBackend backend = attention_backend();
  return backend == AttentionBackend::cudnn_bf16 ||
         (backend == AttentionBackend::automatic && precision() == Precision::bf16);
}

void set_attention_fallback(bool allowed) { fallback_choice().store(allowed); }
bool attention_fallback() { return fallback_choice().load(); }

Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& options) {
  check_inputs(q, k, v, options);

  AttentionConfig config;
  config.sizes = {q.size(0), q.size(1), q.size(2), k.size(2), q.size(3), v.size(3)};
  config.scale = options.scale != 0.0 ? options.scale : 1.0 / std::sqrt(double(q.size(3)));
  config.causal = options.causal;
  config.bf16_products =
      q.device().is_cpu() && q.dtype() == engine::Dtype::f32 && precision() == Precision::bf16;
  if (options.alibi_slopes.defined()) {
    config.alibi_slopes = options.alibi_slopes.to_vector<double>();
    if (q.device().is_cuda())
      config.device_alibi_slopes = options.alibi_slopes.detach().to(engine::Dtype::f64).contiguous();
  }
  if (options.key_mask.defined()) config.key_keep = key_keep_flags(options.key_mask);
  if (options.score_bias.defined()) config.score_bias = options.score_bias.detach().contiguous();
  if (options.dropout_p > 0.0) {
    // The counters of a (B, H, Tq, Tk) draw: successive calls get fresh masks, and the generator's
    // state alone (as a checkpoint saves it) fixes them.
    const uint64_t elements = uint64_t(config.sizes.batch * config.sizes.heads * config.sizes.query_len *
                                       config.sizes.key_len);
    config.dropout.p = options.dropout_p;
    config.dropout.seed = options.dropout_gen->seed();
    config.dropout.offset =
        options.dropout_gen->reserve(engine::random_blocks(engine::RandomDistribution::bernoulli, elements));
  }

  config.cudnn_request = cudnn_request(q);
  if (!config.cudnn_request.empty()) {
    const std::string inexpressible = cuda::cudnn_attention_unsupported(config.sizes, kernel_bias(config));
    config.use_cudnn = inexpressible.empty();
    if (!config.use_cudnn)
      say_once("the hand-written kernel runs the calls with " + inexpressible + " (cuDNN's graph cannot express it)");
    else if (options.alibi_slopes.defined())
      config.cudnn_alibi_slopes = options.alibi_slopes.detach().to(engine::Dtype::f32).contiguous();
  }

  const bool in_place = rows_in_place(q, config.use_cudnn);
  const Tensor q_rows = readable(q.detach(), in_place);
  const Tensor k_rows = readable(k.detach(), in_place);
  const Tensor v_rows = readable(v.detach(), in_place);
  Tensor out = empty_heads(config.sizes.batch, config.sizes.heads, config.sizes.query_len, config.sizes.value_dim, q,
                           in_place);
  Tensor lse = Tensor::empty({config.sizes.batch, config.sizes.heads, config.sizes.query_len}, q.dtype(), q.device());
  ENGINE_DISPATCH_FLOAT(q.dtype(), "attention",
                        [&] { run_forward<scalar_t>(out, lse, q_rows, k_rows, v_rows, config); });

  const Tensor& bias = options.score_bias;
  if (engine::needs_grad({&q, &k, &v, &bias})) {
    const bool bias_grad = bias.defined() && bias.requires_grad();
    auto node =
        std::make_shared<AttentionBackward>(q_rows, k_rows, v_rows, out.detach(), lse, std::move(config), bias_grad);
    engine::record(node, {&q, &k, &v, &bias}, {&out});
  }
  return out;
}

}  // namespace ops
