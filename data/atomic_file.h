// Whole-file writes that never leave a partial file behind: the contents go to a temporary file in
// the same folder, which is flushed to disk and then renamed over the target.
#pragma once

#include <filesystem>
#include <string_view>

namespace data {

// Replaces `path` with `contents` atomically. Errors name the file and the system's reason.
void write_file_atomic(const std::filesystem::path& path, std::string_view contents);

}  // namespace data
