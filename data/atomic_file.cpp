// write_file_atomic: POSIX open + write + fsync + rename.
#include "data/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "engine/error.h"

namespace data {

namespace {

[[noreturn]] void throw_io_error(const std::filesystem::path& path, std::string_view what) {
  throw engine::Error(engine::detail::concat(path.string(), ": ", what, ": ", std::strerror(errno)));
}

}  // namespace

void write_file_atomic(const std::filesystem::path& path, std::string_view contents) {
  const std::filesystem::path temporary = path.string() + ".tmp." + std::to_string(static_cast<long>(::getpid()));
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw_io_error(temporary, "cannot create");
  try {
    const char* p = contents.data();
    size_t left = contents.size();
    while (left > 0) {
      const ssize_t written = ::write(fd, p, left);
      if (written < 0) {
        if (errno == EINTR) continue;
        throw_io_error(temporary, "write failed");
      }
      p += written;
      left -= static_cast<size_t>(written);
    }
    if (::fsync(fd) != 0) throw_io_error(temporary, "fsync failed");
  } catch (...) {
    ::close(fd);
    ::unlink(temporary.c_str());
    throw;
  }
  if (::close(fd) != 0) {
    const int saved = errno;
    ::unlink(temporary.c_str());
    errno = saved;
    throw_io_error(temporary, "close failed");
  }
  if (::rename(temporary.c_str(), path.c_str()) != 0) {
    const int saved = errno;
    ::unlink(temporary.c_str());
    errno = saved;
    throw_io_error(path, "cannot rename the temporary file " + temporary.string() + " to it");
  }
}

}  // namespace data
