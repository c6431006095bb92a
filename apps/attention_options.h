// --attention and --attention-fallback: how attention runs on GPUs (ops/attention.h), set for the
// whole process as the options are read. Apps that compute on a device declare them beside
// --device; the environment (ENGINE_ATTENTION_CUDNN, ENGINE_ATTENTION_FALLBACK) sets the same
// choices where no option is given.
#pragma once

#include "apps/cli_options.h"
#include "ops/attention.h"

namespace apps {

inline void attention_options(CommandLine& cli) {
  cli.each("--attention", "auto|kernel|cudnn",
           "attention on GPUs: cuDNN's fused attention (bf16 inputs) or the f32 kernel; auto: cuDNN with "
           "--precision bf16 (default: auto, or ENGINE_ATTENTION_CUDNN=1 / 0 for cudnn / kernel)",
           [](const std::string& text) { ops::set_attention_backend(ops::parse_attention_backend(text)); });
  cli.on_flag("--attention-fallback",
              "when cuDNN attention was asked for but cannot run, use the f32 kernel (said once) instead of "
              "stopping the run (or ENGINE_ATTENTION_FALLBACK=1)",
              [] { ops::set_attention_fallback(true); });
}

}  // namespace apps
