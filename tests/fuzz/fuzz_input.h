// What the fuzz targets share: the input as a file (the parsers read paths), and the rule that bad
// input must end in engine::Error. Any other exception escapes the target and libFuzzer reports it
// as a crash, as it does for ASan reports, aborts and timeouts.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "engine/error.h"

namespace fuzz_input {

// An in-memory file (memfd) rewritten with each input; path() names it for the parsers.
class InputFile {
 public:
  explicit InputFile(const char* name) : fd_(::memfd_create(name, 0)) {
    if (fd_ < 0) std::abort();
  }
  ~InputFile() { ::close(fd_); }
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  // Replaces the file's contents with `bytes`; returns its path.
  const std::string& write(std::string_view bytes) {
    if (::ftruncate(fd_, 0) != 0) std::abort();
    for (size_t done = 0; done < bytes.size();) {
      const ssize_t n = ::pwrite(fd_, bytes.data() + done, bytes.size() - done, off_t(done));
      if (n <= 0) std::abort();
      done += size_t(n);
    }
    return path_;
  }

 private:
  int fd_;
  std::string path_ = "/proc/self/fd/" + std::to_string(fd_);
};

inline std::string_view as_text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Runs `parse`, accepting engine::Error (the clear error that bad input must get).
template <typename Parse>
void expect_clean_error(Parse&& parse) {
  try {
    parse();
  } catch (const engine::Error&) {
  }
}

}  // namespace fuzz_input
