// The emulated GPUs' count, UUIDs and each host thread's current device (engine/emu/devices.h).
#include "engine/emu/devices.h"

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "engine/error.h"

namespace engine::emu {

namespace {

constexpr int kMaxDevices = 16;
thread_local int thread_device = 0;

int read_device_count() {
  const char* text = std::getenv("ENGINE_EMU_DEVICES");
  if (text == nullptr || *text == '\0') return 1;
  char* end = nullptr;
  const long count = std::strtol(text, &end, 10);
  ENGINE_CHECK(end != text && *end == '\0' && count >= 1 && count <= kMaxDevices, "kernel emulator: ENGINE_EMU_DEVICES='",
               text, "' is not a device count in [1, ", kMaxDevices, "]");
  return int(count);
}

// FNV-1a over the bytes, continued from `hash`.
uint64_t fnv1a(const void* data, size_t bytes, uint64_t hash) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < bytes; ++i) hash = (hash ^ p[i]) * 0x100000001b3ull;
  return hash;
}

}  // namespace

int device_count() {
  static const int count = read_device_count();
  return count;
}

int current_device() { return thread_device; }

void set_current_device(int device) {
  ENGINE_CHECK(device >= 0 && device < device_count(), "kernel emulator: device ", device,
               " does not exist: ENGINE_EMU_DEVICES gives ", device_count(), " emulated device(s)");
  thread_device = device;
}

std::array<uint8_t, 16> device_uuid(int device) {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  const uint64_t low = fnv1a(&device, sizeof device, fnv1a(host, std::strlen(host), 0xcbf29ce484222325ull));
  const uint64_t high = fnv1a("emulated GPU", 12, low);
  std::array<uint8_t, 16> uuid{};
  std::memcpy(uuid.data(), &low, 8);
  std::memcpy(uuid.data() + 8, &high, 8);
  return uuid;
}

}  // namespace engine::emu
