// Flushing denormal floats to zero on the CPU, as torch.set_flush_denormal does.
//
// Arithmetic that produces or consumes denormals (magnitudes below ~1.2e-38 in f32) takes a slow
// path in the FPU: a SeqPE ViT training slowed from 180 to 60 images/s over two epochs as such
// values spread through its GEMMs, and ran twice as fast again with flushing on
// (docs/results/vit.md). Flushing changes results only where a value under that magnitude would
// have been kept, and does it deterministically.
#pragma once

namespace engine {

// Sets flush-to-zero and denormals-are-zero on the calling thread and on every thread of the
// OpenMP pool (threads created later inherit the caller's mode). Returns false, changing nothing,
// where the CPU has no such mode (builds for other than x86-64).
bool set_flush_denormal(bool on);

// Whether the calling thread flushes denormals.
bool flush_denormal();

}  // namespace engine
