// Safetensors files: the weight format that PyTorch, Hugging Face and most tools read.
//
// Layout (https://github.com/huggingface/safetensors, little-endian throughout):
//   u64 N                      length of the header in bytes
//   N bytes of JSON header     {"__metadata__": {str: str}, "name": {"dtype": "F32", "shape": [..],
//                               "data_offsets": [begin, end]}, ...}, padded with spaces to a
//                               multiple of 8 so that the data that follows stays aligned
//   raw data                   each tensor row-major; offsets count from the first data byte
// We write files byte for byte as the reference writer does: "__metadata__" first, tensors in the
// reference's order (descending dtype alignment, then name) with no gaps between them.
#pragma once

#include <map>
#include <string>

#include "engine/tensor.h"

namespace engine {

// Free-form string metadata stored under "__metadata__" (Hugging Face puts {"format": "pt"} there).
using SafetensorsMetadata = std::map<std::string, std::string>;

struct SafetensorsFile {
  std::map<std::string, Tensor> tensors;  // host tensors, contiguous, not requiring grad
  SafetensorsMetadata metadata;
};

// Writes `tensors` (any device, any strides: copied to the host one at a time) to `path`.
// Atomic: the bytes go to "<path>.tmp.<pid>", are fsync'ed, then renamed over `path`; on any failure
// the temporary file is removed and an existing file at `path` is left as it was.
void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const SafetensorsMetadata& metadata = {});

// How BF16 tensors (common in Hugging Face checkpoints) load: widened to f32 exactly, for models
// held in f32, or kept as bf16 tensors (half the memory; Module::load_state_dict widens them into
// f32 parameters all the same, as it converts any dtype).
enum class Bf16Loading { to_f32, keep_bf16 };

// Reads a whole safetensors file into host tensors. F32, F64, I32 and I64 load as they are, F16 is
// converted to f32, BF16 as `bf16` says. Everything is validated (header length, JSON, dtypes,
// shapes against offsets, offsets tiling the data, file size) and errors name the file and the
// tensor at fault. bf16 tensors are written as BF16.
SafetensorsFile load_safetensors(const std::string& path, Bf16Loading bf16 = Bf16Loading::to_f32);

// The metadata of a safetensors file, after validating its header and size exactly as
// load_safetensors does, without reading the tensors' data.
SafetensorsMetadata read_safetensors_metadata(const std::string& path);

}  // namespace engine
