// The bf16 kernel choice (ops/cpu/bf16_kernel.h): CPUID feature bits, the OS's register-state
// support (XCR0), and Linux's per-process permission for the AMX tile data.
#include "ops/cpu/bf16_kernel.h"

#include <atomic>
#include <cstdlib>
#include <string>

#include "engine/error.h"

#if defined(__x86_64__) && ENGINE_BF16_KERNELS
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace ops::cpu {

namespace {

#if defined(__x86_64__) && ENGINE_BF16_KERNELS
// CPUID leaf 7 and XCR0 bits (Intel SDM vol. 2A, CPUID; vol. 1, 13.3).
constexpr unsigned kAvx512fBit = 1u << 16, kAvx512bwBit = 1u << 30;       // leaf 7.0 EBX
constexpr unsigned kAmxBf16Bit = 1u << 22, kAmxTileBit = 1u << 24;        // leaf 7.0 EDX
constexpr unsigned kAvx512Bf16Bit = 1u << 5;                              // leaf 7.1 EAX
constexpr unsigned kOsZmmState = 0xe6;                                    // XCR0: SSE, AVX, opmask, ZMM
constexpr unsigned kOsTileState = 3u << 17;                               // XCR0: XTILECFG, XTILEDATA
// Linux's arch_prctl for dynamically enabled register state (asm/prctl.h), and the AMX tile data's
// state component number.
constexpr long kArchGetXcompPerm = 0x1022, kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;

struct CpuFeatures {
  bool avx512_bf16 = false, amx_bf16 = false;
};

CpuFeatures detect_cpu() {
  CpuFeatures features;
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid_count(1, 0, &eax, &ebx, &ecx, &edx) || !(ecx & bit_OSXSAVE)) return features;
  unsigned xcr0_low = 0, xcr0_high = 0;
  __asm__("xgetbv" : "=a"(xcr0_low), "=d"(xcr0_high) : "c"(0));
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return features;
  const unsigned leaf7_ebx = ebx, leaf7_edx = edx;
  const bool os_zmm = (xcr0_low & kOsZmmState) == kOsZmmState;
  const bool avx512 = os_zmm && (leaf7_ebx & kAvx512fBit) && (leaf7_ebx & kAvx512bwBit);
  if (__get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx)) features.avx512_bf16 = avx512 && (eax & kAvx512Bf16Bit);
  // The AMX kernel also packs and converts with AVX512-BF16 instructions.
  features.amx_bf16 = features.avx512_bf16 && (leaf7_edx & kAmxTileBit) && (leaf7_edx & kAmxBf16Bit) &&
                      (xcr0_low & kOsTileState) == kOsTileState;
  return features;
}

// Linux (5.16+) lets a process touch the 8 KiB of tile data only after asking (arch_prctl); asked
// once per process, on first use. False on older kernels, which refuse the request.
bool amx_permitted() {
  static const bool permitted = [] {
    if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) != 0) return false;
    unsigned long bitmask = 0;
    return syscall(SYS_arch_prctl, kArchGetXcompPerm, &bitmask) == 0 && (bitmask >> kXfeatureXtiledata) & 1;
  }();
  return permitted;
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect_cpu();
  return features;
}
#endif

Bf16Kernel parse_kernel(const std::string& name) {
  for (Bf16Kernel kernel : {Bf16Kernel::amx, Bf16Kernel::avx512_bf16, Bf16Kernel::fp32})
    if (name == (kernel == Bf16Kernel::amx ? "amx" : kernel == Bf16Kernel::avx512_bf16 ? "avx512_bf16" : "fp32"))
      return kernel;
  throw engine::Error(
      engine::detail::concat("ENGINE_BF16_KERNEL=", name, " is not a bf16 kernel: use amx, avx512_bf16 or fp32"));
}

Bf16Kernel fastest_available() {
  for (Bf16Kernel kernel : {Bf16Kernel::amx, Bf16Kernel::avx512_bf16})
    if (bf16_kernel_available(kernel)) return kernel;
  return Bf16Kernel::fp32;
}

// The kernel ENGINE_BF16_KERNEL names, checked against the CPU, or the fastest available.
Bf16Kernel kernel_from_environment() {
  const char* forced = std::getenv("ENGINE_BF16_KERNEL");
  if (!forced || !*forced) return fastest_available();
  const Bf16Kernel kernel = parse_kernel(forced);
  ENGINE_CHECK(bf16_kernel_available(kernel), "ENGINE_BF16_KERNEL=", forced, ": ", bf16_kernel_name(kernel),
               " is not available on this CPU (or, for AMX, Linux refused the tile-data permission)");
  return kernel;
}

// -1: none forced by set_bf16_kernel; otherwise a Bf16Kernel.
std::atomic<int> forced_kernel{-1};

}  // namespace

const char* bf16_kernel_name(Bf16Kernel kernel) {
  switch (kernel) {
    case Bf16Kernel::amx: return "AMX";
    case Bf16Kernel::avx512_bf16: return "AVX512-BF16";
    case Bf16Kernel::fp32: return "fp32 fallback";
  }
  return "?";
}

bool bf16_kernel_available(Bf16Kernel kernel) {
  if (kernel == Bf16Kernel::fp32) return true;
#if defined(__x86_64__) && ENGINE_BF16_KERNELS
  if (kernel == Bf16Kernel::avx512_bf16) return cpu_features().avx512_bf16;
  return cpu_features().amx_bf16 && amx_permitted();
#else
  return false;
#endif
}

void set_bf16_kernel(Bf16Kernel kernel) {
  ENGINE_CHECK(bf16_kernel_available(kernel), "bf16 kernel ", bf16_kernel_name(kernel),
               " is not available on this CPU (or, for AMX, Linux refused the tile-data permission)");
  forced_kernel = int(kernel);
}

Bf16Kernel bf16_kernel() {
  const int forced = forced_kernel.load();
  if (forced >= 0) return Bf16Kernel(forced);
  static const Bf16Kernel from_environment = kernel_from_environment();
  return from_environment;
}

}  // namespace ops::cpu
