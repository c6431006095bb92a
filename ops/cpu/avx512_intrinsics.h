// <immintrin.h> for the CPU kernels that use AVX-512 intrinsics. Include it, not <immintrin.h>:
// GCC 12.2's AVX-512 shuffle and mask intrinsics pass _mm512_undefined_ps() as the unused merge
// source, which its -W(maybe-)uninitialized reports inside the header (GCC bug 105593), and the
// warnings can only be silenced around the header's first inclusion in a file.
#pragma once

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
