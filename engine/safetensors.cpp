// Safetensors reader and writer (format in safetensors.h).
//
// The writer streams the header and then each tensor's bytes straight from a contiguous host copy;
// the reader validates the whole header before it allocates anything, then reads each tensor
// straight into its storage, so neither side holds the file twice in memory.
#include "engine/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "engine/autograd.h"
#include "engine/checked_size.h"
#include "engine/json_read.h"

namespace engine {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian and is copied as raw bytes: a big-endian host needs byte swaps");

// File I/O checks: like ENGINE_CHECK, with the reason the system gave (errno) appended.
#define SAFETENSORS_CHECK_IO(COND, ...)                                                            \
  do {                                                                                             \
    if (!(COND)) {                                                                                 \
      const int saved_errno = errno;                                                               \
      throw ::engine::Error(::engine::detail::concat(__VA_ARGS__, ": ", std::strerror(saved_errno))); \
    }                                                                                              \
  } while (0)

namespace {

// The reference reader refuses larger headers; so do we, before allocating one.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr const char* kMetadataKey = "__metadata__";

// Element types as the file names them. F16 is read only (converted to f32); BF16 loads as f32 or as
// bf16 (Bf16Loading), and bf16 tensors are written as BF16.
enum class FileDtype { F32, F64, I32, I64, F16, BF16 };

struct FileDtypeInfo {
  FileDtype type;
  const char* name;
  size_t size;
  Dtype loads_as;
};

constexpr FileDtypeInfo kFileDtypes[] = {
    {FileDtype::F32, "F32", 4, Dtype::f32},  {FileDtype::F64, "F64", 8, Dtype::f64},
    {FileDtype::I32, "I32", 4, Dtype::i32},  {FileDtype::I64, "I64", 8, Dtype::i64},
    {FileDtype::F16, "F16", 2, Dtype::f32},  {FileDtype::BF16, "BF16", 2, Dtype::f32},
};

// Dtypes of the format that this engine has no tensor type for.
constexpr const char* kUnsupportedFileDtypes[] = {"BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "U32", "U64"};

const char* file_dtype_name(Dtype t) {
  switch (t) {
    case Dtype::f32: return "F32";
    case Dtype::f64: return "F64";
    case Dtype::i32: return "I32";
    case Dtype::i64: return "I64";
    case Dtype::bf16: return "BF16";
  }
  return "?";
}

// Position of the dtype in the reference implementation's Dtype enum, which is in increasing
// alignment order; its writer sorts tensors by this, descending, then by name.
int reference_dtype_rank(Dtype t) {
  switch (t) {
    case Dtype::i32: return 9;
    case Dtype::f32: return 11;
    case Dtype::f64: return 12;
    case Dtype::i64: return 13;
    case Dtype::bf16: return 8;
  }
  return 0;
}

// IEEE half -> float, exact (every half is a float), including subnormals, infinities and NaNs.
float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0x1f) return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));
  if (exponent == 0) {
    const float magnitude = std::ldexp(float(mantissa), -24);
    return sign ? -magnitude : magnitude;
  }
  return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

// A JSON string as serde_json writes it (nlohmann escapes the same characters the same way).
std::string json_string(const std::string& text, const std::string& path, const char* what) {
  try {
    return nlohmann::json(text).dump();
  } catch (const nlohmann::json::exception&) {
    throw Error(detail::concat("save_safetensors ", path, ": ", what, " '", text, "' is not valid UTF-8"));
  }
}

// One tensor's place in the file being written.
struct WriteEntry {
  const std::string* name;
  Tensor tensor;
  uint64_t begin, end;
};

// Orders and places the tensors as the reference writer does.
std::vector<WriteEntry> plan_layout(const std::string& path, const std::map<std::string, Tensor>& tensors) {
  std::vector<WriteEntry> entries;
  entries.reserve(tensors.size());
  for (const auto& [name, tensor] : tensors) {
    ENGINE_CHECK(tensor.defined(), "save_safetensors ", path, ": tensor '", name, "' is undefined");
    ENGINE_CHECK(name != kMetadataKey, "save_safetensors ", path, ": '", kMetadataKey,
                 "' is reserved for metadata and cannot name a tensor");
    entries.push_back({&name, tensor, 0, 0});
  }
  std::stable_sort(entries.begin(), entries.end(), [](const WriteEntry& a, const WriteEntry& b) {
    return reference_dtype_rank(a.tensor.dtype()) > reference_dtype_rank(b.tensor.dtype());
  });
  uint64_t offset = 0;
  for (WriteEntry& e : entries) {
    e.begin = offset;
    offset += uint64_t(e.tensor.numel()) * dtype_size(e.tensor.dtype());
    e.end = offset;
  }
  return entries;
}

// The header text, compact JSON padded with spaces to a multiple of 8 bytes.
std::string header_text(const std::string& path, const std::vector<WriteEntry>& entries,
                        const SafetensorsMetadata& metadata) {
  std::string header = "{";
  if (!metadata.empty()) {
    header += json_string(kMetadataKey, path, "key") + ":{";
    bool first = true;
    for (const auto& [key, value] : metadata) {
      if (!first) header += ',';
      first = false;
      header += json_string(key, path, "metadata key") + ':' + json_string(value, path, "metadata value");
    }
    header += '}';
  }
  for (const WriteEntry& e : entries) {
    if (header.size() > 1) header += ',';
    header += json_string(*e.name, path, "tensor name");
    header += ":{\"dtype\":\"";
    header += file_dtype_name(e.tensor.dtype());
    header += "\",\"shape\":[";
    for (size_t d = 0; d < e.tensor.shape().size(); ++d) {
      if (d) header += ',';
      header += std::to_string(e.tensor.shape()[d]);
    }
    header += "],\"data_offsets\":[" + std::to_string(e.begin) + ',' + std::to_string(e.end) + "]}";
  }
  header += '}';
  header.append((8 - header.size() % 8) % 8, ' ');
  return header;
}

// A file written under a temporary name and renamed over its target only when complete. Until
// commit() succeeds, destruction removes the temporary file and leaves the target untouched.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(const std::string& target)
      : target_(target), temp_(target + ".tmp." + std::to_string(::getpid())) {
    fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    SAFETENSORS_CHECK_IO(fd_ >= 0, "save_safetensors ", target_, ": cannot create temporary file ", temp_);
  }
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;
  ~AtomicFileWriter() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(temp_.c_str());
  }

  // Writes all bytes, resuming after partial writes and interrupts.
  void write(const void* data, size_t bytes) {
    const char* p = static_cast<const char*>(data);
    while (bytes > 0) {
      const ssize_t n = ::write(fd_, p, std::min<size_t>(bytes, size_t(1) << 30));
      if (n < 0 && errno == EINTR) continue;
      SAFETENSORS_CHECK_IO(n > 0, "save_safetensors ", target_, ": cannot write to ", temp_);
      p += n;
      bytes -= size_t(n);
    }
  }

  // Flushes the data to disk, then renames the file over the target.
  void commit() {
    SAFETENSORS_CHECK_IO(::fsync(fd_) == 0, "save_safetensors ", target_, ": cannot sync ", temp_);
    const int fd = fd_;
    fd_ = -1;
    SAFETENSORS_CHECK_IO(::close(fd) == 0, "save_safetensors ", target_, ": cannot close ", temp_);
    SAFETENSORS_CHECK_IO(::rename(temp_.c_str(), target_.c_str()) == 0, "save_safetensors ", target_,
                         ": cannot rename ", temp_, " over it");
    committed_ = true;
    sync_parent_directory();
  }

 private:
  // Makes the rename itself durable. Best effort: the target is already complete either way.
  void sync_parent_directory() const {
    std::filesystem::path parent = std::filesystem::path(target_).parent_path();
    if (parent.empty()) parent = ".";
    const int dir = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) return;
    ::fsync(dir);
    ::close(dir);
  }

  std::string target_, temp_;
  int fd_ = -1;
  bool committed_ = false;
};

// One tensor as the header describes it.
struct ReadEntry {
  std::string name;
  const FileDtypeInfo* dtype;
  Shape shape;
  uint64_t begin, end;
};

// An open file read at explicit offsets; closed on destruction.
class FileReader {
 public:
  explicit FileReader(const std::string& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    SAFETENSORS_CHECK_IO(fd_ >= 0, "load_safetensors ", path, ": cannot open");
    struct stat info {};
    SAFETENSORS_CHECK_IO(::fstat(fd_, &info) == 0, "load_safetensors ", path, ": cannot stat");
    ENGINE_CHECK(S_ISREG(info.st_mode), "load_safetensors ", path, ": not a regular file");
    size_ = uint64_t(info.st_size);
  }
  FileReader(const FileReader&) = delete;
  FileReader& operator=(const FileReader&) = delete;
  ~FileReader() { ::close(fd_); }

  uint64_t size() const { return size_; }

  // Reads exactly `bytes` bytes at `offset`; the caller has checked they lie within the file.
  void read(void* out, uint64_t offset, size_t bytes) const {
    char* p = static_cast<char*>(out);
    while (bytes > 0) {
      const ssize_t n = ::pread(fd_, p, std::min<size_t>(bytes, size_t(1) << 30), off_t(offset));
      if (n < 0 && errno == EINTR) continue;
      SAFETENSORS_CHECK_IO(n >= 0, "load_safetensors ", path_, ": cannot read");
      ENGINE_CHECK(n > 0, "load_safetensors ", path_, ": file shrank while being read");
      p += n;
      offset += uint64_t(n);
      bytes -= size_t(n);
    }
  }

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

// A non-negative JSON integer that fits in int64, or nothing.
std::optional<uint64_t> json_index(const nlohmann::json& value) {
  if (!value.is_number_unsigned()) return std::nullopt;
  const uint64_t v = value.get<uint64_t>();
  if (v > uint64_t(std::numeric_limits<int64_t>::max())) return std::nullopt;
  return v;
}

// Checks one tensor's header entry and returns what it says.
ReadEntry parse_entry(const std::string& path, const std::string& name, const nlohmann::json& info) {
  const std::string where = detail::concat("load_safetensors ", path, ": tensor '", name, "'");
  ENGINE_CHECK(info.is_object(), where, ": header entry is not a JSON object: ", json_excerpt(info));
  for (const char* field : {"dtype", "shape", "data_offsets"})
    ENGINE_CHECK(info.contains(field), where, ": header entry lacks \"", field, "\"");

  ReadEntry entry{name, nullptr, {}, 0, 0};
  const nlohmann::json& dtype = info["dtype"];
  ENGINE_CHECK(dtype.is_string(), where, ": dtype is not a string: ", json_excerpt(dtype));
  const std::string dtype_text = dtype.get<std::string>();
  for (const FileDtypeInfo& known : kFileDtypes)
    if (dtype_text == known.name) entry.dtype = &known;
  if (entry.dtype == nullptr) {
    const bool in_format = std::find(std::begin(kUnsupportedFileDtypes), std::end(kUnsupportedFileDtypes),
                                     dtype_text) != std::end(kUnsupportedFileDtypes);
    throw Error(detail::concat(where, ": ", in_format ? "unsupported" : "unknown", " dtype \"", dtype_text,
                               "\" (this engine reads F32, F64, I32, I64, F16, BF16)"));
  }

  const nlohmann::json& shape = info["shape"];
  ENGINE_CHECK(shape.is_array(), where, ": shape is not an array: ", json_excerpt(shape));
  uint64_t numel = 1;
  for (const nlohmann::json& size : shape) {
    const std::optional<uint64_t> s = json_index(size);
    ENGINE_CHECK(s.has_value(), where, ": shape ", json_excerpt(shape), " holds something other than a size");
    ENGINE_CHECK(!size_product_overflows(numel, *s, &numel), where, ": shape ", json_excerpt(shape), " overflows");
    entry.shape.push_back(int64_t(*s));
  }
  uint64_t nbytes = 0;
  ENGINE_CHECK(!size_product_overflows(numel, uint64_t(entry.dtype->size), &nbytes), where, ": shape ",
               json_excerpt(shape), " overflows");

  const nlohmann::json& offsets = info["data_offsets"];
  ENGINE_CHECK(offsets.is_array() && offsets.size() == 2 && json_index(offsets[0]) && json_index(offsets[1]),
               where, ": data_offsets must be [begin, end], got ", json_excerpt(offsets));
  entry.begin = *json_index(offsets[0]);
  entry.end = *json_index(offsets[1]);
  ENGINE_CHECK(entry.begin <= entry.end, where, ": data_offsets ", json_excerpt(offsets), " end before they begin");
  ENGINE_CHECK(entry.end - entry.begin == nbytes, where, ": ", dtype_text, " shape ", shape_str(entry.shape),
               " needs ", nbytes, " bytes but data_offsets ", json_excerpt(offsets), " span ", entry.end - entry.begin);
  return entry;
}

// Reads one validated tensor into a new host tensor.
Tensor read_tensor(const FileReader& file, uint64_t data_start, const ReadEntry& e, Bf16Loading bf16) {
  const bool raw_bf16 = e.dtype->type == FileDtype::BF16 && bf16 == Bf16Loading::keep_bf16;
  Tensor out = Tensor::empty(e.shape, raw_bf16 ? Dtype::bf16 : e.dtype->loads_as);
  const size_t nbytes = size_t(e.end - e.begin);
  if (nbytes == 0) return out;
  if (raw_bf16 || (e.dtype->type != FileDtype::F16 && e.dtype->type != FileDtype::BF16)) {
    file.read(out.raw_data(), data_start + e.begin, nbytes);
    return out;
  }
  std::vector<uint16_t> halves(nbytes / 2);
  file.read(halves.data(), data_start + e.begin, nbytes);
  float* dst = out.data<float>();
  if (e.dtype->type == FileDtype::F16) {
    for (size_t i = 0; i < halves.size(); ++i) dst[i] = half_to_float(halves[i]);
  } else {
    for (size_t i = 0; i < halves.size(); ++i) dst[i] = f32_from_bf16_bits(halves[i]);
  }
  return out;
}

// What the header says: the metadata and each tensor's place in the data.
struct Layout {
  SafetensorsMetadata metadata;
  std::vector<ReadEntry> entries;  // in data order
  uint64_t data_start = 0;         // file offset of the first data byte
};

// Reads and validates the header of `file` (header length, JSON, dtypes, shapes against offsets,
// offsets tiling the data, file size) without reading the data.
Layout read_layout(const FileReader& file, const std::string& path) {
  const std::string where = "load_safetensors " + path;
  ENGINE_CHECK(file.size() >= 8, where, ": file has ", file.size(),
               " bytes, fewer than the 8-byte header length: truncated, or not a safetensors file");
  uint64_t header_length = 0;
  file.read(&header_length, 0, sizeof(header_length));
  ENGINE_CHECK(header_length <= kMaxHeaderBytes, where, ": header length ", header_length, " exceeds the ",
               kMaxHeaderBytes, "-byte limit: not a safetensors file");
  ENGINE_CHECK(8 + header_length <= file.size(), where, ": header length ", header_length,
               " runs past the end of the file (", file.size(), " bytes): truncated, or not a safetensors file");

  std::string header(size_t(header_length), '\0');
  file.read(header.data(), 8, header.size());
  const nlohmann::json json = parse_json(header, where + " header");
  ENGINE_CHECK(json.is_object(), where, ": header is not a JSON object");

  Layout layout;
  for (const auto& [key, value] : json.items()) {
    if (key != kMetadataKey) {
      layout.entries.push_back(parse_entry(path, key, value));
      continue;
    }
    ENGINE_CHECK(value.is_object(), where, ": \"", kMetadataKey, "\" is not a JSON object");
    for (const auto& [meta_key, meta_value] : value.items()) {
      ENGINE_CHECK(meta_value.is_string(), where, ": metadata \"", meta_key, "\" is not a string: ",
                   json_excerpt(meta_value));
      layout.metadata[meta_key] = meta_value.get<std::string>();
    }
  }

  // The data must be exactly the tensors' byte ranges laid end to end, as the reference requires.
  std::vector<ReadEntry>& entries = layout.entries;
  std::sort(entries.begin(), entries.end(), [](const ReadEntry& a, const ReadEntry& b) {
    return std::pair(a.begin, a.end) < std::pair(b.begin, b.end);
  });
  layout.data_start = 8 + header_length;
  const uint64_t data_available = file.size() - layout.data_start;
  uint64_t covered = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    const ReadEntry& e = entries[i];
    ENGINE_CHECK(e.begin >= covered, where, ": tensor '", e.name, "' data_offsets [", e.begin, ", ", e.end,
                 "] overlap tensor '", entries[i - 1].name, "' [", entries[i - 1].begin, ", ", entries[i - 1].end,
                 "]");
    ENGINE_CHECK(e.begin == covered, where, ": tensor '", e.name, "' data_offsets [", e.begin, ", ", e.end,
                 "] leave a gap after byte ", covered, " of the data");
    ENGINE_CHECK(e.end <= data_available, where, ": truncated: tensor '", e.name, "' data_offsets [", e.begin,
                 ", ", e.end, "] reach past the ", data_available, " data bytes the file holds");
    covered = e.end;
  }
  ENGINE_CHECK(covered == data_available, where, ": ", data_available - covered,
               " bytes after the last tensor's data: the header does not describe the whole file");
  return layout;
}

}  // namespace

void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const SafetensorsMetadata& metadata) {
  NoGradGuard no_grad;  // host copies of parameters must not join a graph
  const std::vector<WriteEntry> entries = plan_layout(path, tensors);
  const std::string header = header_text(path, entries, metadata);
  const uint64_t header_length = header.size();

  AtomicFileWriter file(path);
  file.write(&header_length, sizeof(header_length));
  file.write(header.data(), header.size());
  for (const WriteEntry& e : entries) {
    if (e.end == e.begin) continue;
    // One tensor at a time, so that a device-resident model needs one tensor's worth of host memory.
    const Tensor host = e.tensor.to(Device::cpu()).contiguous();
    file.write(host.raw_data(), size_t(e.end - e.begin));
  }
  file.commit();
}

SafetensorsFile load_safetensors(const std::string& path, Bf16Loading bf16) {
  const FileReader file(path);
  Layout layout = read_layout(file, path);
  SafetensorsFile result;
  result.metadata = std::move(layout.metadata);
  for (const ReadEntry& e : layout.entries)
    result.tensors.emplace(e.name, read_tensor(file, layout.data_start, e, bf16));
  return result;
}

SafetensorsMetadata read_safetensors_metadata(const std::string& path) {
  return read_layout(FileReader(path), path).metadata;
}

}  // namespace engine
