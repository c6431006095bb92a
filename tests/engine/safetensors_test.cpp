// Tests of safetensors files (engine/safetensors.h): round trips, reference bytes, F16/BF16,
// damaged files, atomic writes.
#include "engine/safetensors.h"

#include <doctest/doctest.h>
#include <signal.h>
#include <sys/resource.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>

#include "engine/backend.h"
#include "file_test_util.h"

using engine::Dtype;
using engine::Tensor;
using file_test_util::read_bytes;
using file_test_util::ScratchDir;
using file_test_util::write_bytes;

namespace {

// The bytes of a value as the file stores them (the host is little-endian, as the writer asserts).
template <typename T>
std::string le_bytes(T value) {
  std::string bytes(sizeof(T), '\0');
  std::memcpy(bytes.data(), &value, sizeof(T));
  return bytes;
}

template <typename T>
std::string le_bytes(std::initializer_list<T> values) {
  std::string bytes;
  for (T v : values) bytes += le_bytes(v);
  return bytes;
}

// A file per the spec: u64 header length, the header padded with spaces to a multiple of 8, data.
std::string safetensors_bytes(std::string header, const std::string& data) {
  header.append((8 - header.size() % 8) % 8, ' ');
  return le_bytes(uint64_t(header.size())) + header + data;
}

// The message load_safetensors throws for the file at `path` (empty when it does not throw).
std::string load_error(const std::string& path) {
  try {
    engine::load_safetensors(path);
  } catch (const engine::Error& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("safetensors round trip keeps dtype, shape and values of non-contiguous tensors") {
  ScratchDir dir;
  std::vector<engine::Device> devices = {engine::Device::cpu()};
  if (engine::backend_available(engine::DeviceType::cuda)) devices.push_back(engine::Device::cuda());
  for (const engine::Device device : devices) {
    CAPTURE(device.str());
    // Each input is a view that is not contiguous, so the writer must gather it.
    std::map<std::string, Tensor> tensors = {
        {"f32.transposed", Tensor::from_vector({1.5, -2.25, 3, 4.125, -5, 6.5}, {2, 3}, Dtype::f32, device)
                               .transpose(0, 1)},
        {"f64.narrowed", Tensor::from_vector({0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8}, {2, 4}, Dtype::f64, device)
                             .narrow(1, 1, 2)},
        {"i32.permuted", Tensor::from_indices({1, -2, 3, 4, 5, -6, 7, 8, 9, 10, 11, 12}, {2, 3, 2}, Dtype::i32,
                                              device).permute({2, 0, 1})},
        {"i64.expanded", Tensor::from_indices({int64_t(1) << 40, -7, 9}, {1, 3}, Dtype::i64, device).expand({2, 3})},
        {"scalar", Tensor::full({}, 2.5, Dtype::f32, device)},
        {"empty", Tensor::zeros({0, 3}, Dtype::f64, device)},
    };
    tensors["f32.param"] = Tensor::from_vector({0.75, -0.5, 0.25, 1.0}, {2, 2}, Dtype::f32, device)
                               .requires_grad_()
                               .transpose(0, 1);
    const engine::SafetensorsMetadata metadata = {{"format", "pt"}, {"note", "quote \" backslash \\ tab \t é"}};
    const std::string path = dir.file("round_trip.safetensors");
    engine::save_safetensors(path, tensors, metadata);

    const engine::SafetensorsFile loaded = engine::load_safetensors(path);
    CHECK(loaded.metadata == metadata);
    REQUIRE(loaded.tensors.size() == tensors.size());
    for (const auto& [name, original] : tensors) {
      CAPTURE(name);
      REQUIRE(loaded.tensors.count(name) == 1);
      const Tensor& t = loaded.tensors.at(name);
      CHECK(t.dtype() == original.dtype());
      CHECK(t.shape() == original.shape());
      CHECK(t.device().is_cpu());
      CHECK(t.is_contiguous());
      CHECK(!t.requires_grad());
      if (engine::is_floating(t.dtype())) {
        CHECK(t.to_vector<double>() == original.to_vector<double>());  // bit-exact: no conversion on the way
      } else {
        CHECK(t.to_vector<int64_t>() == original.to_vector<int64_t>());
      }
    }
    CHECK(dir.entries() == std::vector<std::string>{"round_trip.safetensors"});
  }
}

TEST_CASE("safetensors writer produces the reference implementation's bytes, and the reader reads them") {
  ScratchDir dir;
  SUBCASE("one f32 tensor: header padded with spaces to a multiple of 8") {
    // The reference crate's own test vector (test_serialization_forced_alignement): a 65-byte header
    // padded with 7 spaces to 72.
    const std::string header = R"({"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}})";
    REQUIRE(header.size() == 65);
    const std::string expected = std::string("\x48\0\0\0\0\0\0\0", 8) + header + "       " +
                                 le_bytes<float>({0.0f, 1.0f, 2.0f, 3.0f, 4.0f, 5.0f});
    const std::string fixture = dir.file("fixture.safetensors");
    write_bytes(fixture, expected);
    const engine::SafetensorsFile loaded = engine::load_safetensors(fixture);
    REQUIRE(loaded.tensors.count("attn0") == 1);
    CHECK(loaded.tensors.at("attn0").shape() == engine::Shape{1, 1, 2, 3});
    CHECK(loaded.tensors.at("attn0").to_vector<float>() == std::vector<float>{0, 1, 2, 3, 4, 5});
    CHECK(loaded.metadata.empty());

    const std::string ours = dir.file("ours.safetensors");
    engine::save_safetensors(ours, loaded.tensors);
    CHECK(read_bytes(ours) == expected);
  }
  SUBCASE("a header already a multiple of 8 bytes gets no padding") {
    // 56 bytes: padding it with 8 more spaces would still be a valid file, but not the reference's.
    const std::string header = R"({"abc":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
    REQUIRE(header.size() == 56);
    const std::string expected = std::string("\x38\0\0\0\0\0\0\0", 8) + header + le_bytes<float>({1.5f, -2.0f});
    const std::string ours = dir.file("ours.safetensors");
    engine::save_safetensors(ours, {{"abc", Tensor::from_vector({1.5, -2.0}, {2})}});
    CHECK(read_bytes(ours) == expected);
  }
  SUBCASE("no tensors, no metadata") {
    // The reference's test_empty: "{}" padded with 6 spaces.
    const std::string ours = dir.file("ours.safetensors");
    engine::save_safetensors(ours, {});
    CHECK(read_bytes(ours) == std::string("\x08\0\0\0\0\0\0\0{}      ", 16));
    CHECK(engine::load_safetensors(ours).tensors.empty());
  }
  SUBCASE("metadata only") {
    // Also from the reference tests: {"__metadata__":{"framework":"pt"}} is 35 bytes, padded to 40.
    const std::string expected =
        std::string("\x28\0\0\0\0\0\0\0", 8) + R"({"__metadata__":{"framework":"pt"}})" + "     ";
    const std::string ours = dir.file("ours.safetensors");
    engine::save_safetensors(ours, {}, {{"framework", "pt"}});
    CHECK(read_bytes(ours) == expected);
    CHECK(engine::load_safetensors(ours).metadata == engine::SafetensorsMetadata{{"framework", "pt"}});
  }
  SUBCASE("several dtypes: ordered by descending alignment (I64, F64, F32, I32), then by name") {
    const std::string header =
        R"({"__metadata__":{"format":"pt"},)"
        R"("steps":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},)"
        R"("w":{"dtype":"F64","shape":[2,1],"data_offsets":[8,24]},)"
        R"("bias":{"dtype":"F32","shape":[2],"data_offsets":[24,32]},)"
        R"("v":{"dtype":"F32","shape":[],"data_offsets":[32,36]},)"
        R"("ids":{"dtype":"I32","shape":[3],"data_offsets":[36,48]}})";
    const std::string data = le_bytes<int64_t>({7}) + le_bytes<double>({1.5, -2.0}) +
                             le_bytes<float>({0.5f, -1.25f}) + le_bytes<float>({3.0f}) +
                             le_bytes<int32_t>({1, -2, 3});
    const std::string expected = safetensors_bytes(header, data);
    const std::map<std::string, Tensor> tensors = {
        {"bias", Tensor::from_vector({0.5, -1.25}, {2})},
        {"ids", Tensor::from_indices({1, -2, 3}, {3}, Dtype::i32)},
        {"steps", Tensor::from_indices({7}, {1})},
        {"v", Tensor::full({}, 3.0)},
        {"w", Tensor::from_vector({1.5, -2.0}, {2, 1}, Dtype::f64)},
    };
    const std::string ours = dir.file("ours.safetensors");
    engine::save_safetensors(ours, tensors, {{"format", "pt"}});
    CHECK(read_bytes(ours) == expected);
    const std::string fixture = dir.file("fixture.safetensors");
    write_bytes(fixture, expected);
    const engine::SafetensorsFile loaded = engine::load_safetensors(fixture);
    CHECK(loaded.tensors.at("steps").to_vector<int64_t>() == std::vector<int64_t>{7});
    CHECK(loaded.tensors.at("w").to_vector<double>() == std::vector<double>{1.5, -2.0});
    CHECK(loaded.tensors.at("ids").dtype() == Dtype::i32);
    CHECK(loaded.tensors.at("ids").to_vector<int32_t>() == std::vector<int32_t>{1, -2, 3});
    CHECK(loaded.tensors.at("v").shape().empty());
  }
}

TEST_CASE("safetensors reader converts F16 and BF16 to f32 exactly") {
  ScratchDir dir;
  const std::string header = R"({"bf":{"dtype":"BF16","shape":[3],"data_offsets":[0,6]},)"
                             R"("h":{"dtype":"F16","shape":[2,3],"data_offsets":[6,18]}})";
  // F16: 1, -2, 2^-24 (smallest subnormal), 65504 (largest finite), -inf, 0x3555 = 0.333251953125.
  // BF16: 1, -3.140625 (pi's top 16 bits, negated), 2^-126 * 1.5 (a normal float with a short mantissa).
  const std::string data = le_bytes<uint16_t>({0x3F80, 0xC049, 0x00C0}) +
                           le_bytes<uint16_t>({0x3C00, 0xC000, 0x0001, 0x7BFF, 0xFC00, 0x3555});
  const std::string path = dir.file("half.safetensors");
  write_bytes(path, safetensors_bytes(header, data));
  const engine::SafetensorsFile loaded = engine::load_safetensors(path);
  const Tensor h = loaded.tensors.at("h");
  CHECK(h.dtype() == Dtype::f32);
  CHECK(h.shape() == engine::Shape{2, 3});
  const std::vector<float> hv = h.to_vector<float>();
  CHECK(hv[0] == 1.0f);
  CHECK(hv[1] == -2.0f);
  CHECK(hv[2] == std::ldexp(1.0f, -24));
  CHECK(hv[3] == 65504.0f);
  CHECK(hv[4] == -std::numeric_limits<float>::infinity());
  CHECK(hv[5] == 0.333251953125f);
  const std::vector<float> bv = loaded.tensors.at("bf").to_vector<float>();
  CHECK(bv[0] == 1.0f);
  CHECK(bv[1] == -3.140625f);
  CHECK(bv[2] == std::ldexp(1.5f, -126));
}

TEST_CASE("safetensors BF16: bf16 tensors are written byte for byte and load as bf16 or as f32") {
  ScratchDir dir;
  // The reference orders BF16 after I32 (its dtype enum: ..., F16, BF16, I32, U32, F32, F64, I64, U64).
  const std::string header = R"({"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                             R"("ids":{"dtype":"I32","shape":[2],"data_offsets":[4,12]},)"
                             R"("a":{"dtype":"BF16","shape":[2,2],"data_offsets":[12,20]},)"
                             R"("w":{"dtype":"BF16","shape":[3],"data_offsets":[20,26]}})";
  // a: 1, -3.140625, 2^-133 (the least denormal), -inf; w: 1 + 2^-7 (1 + 2^-8 + 2^-30 rounded once),
  // quiet NaN, 0x1.fep127 (the largest finite bf16).
  const std::string data = le_bytes<float>({0.5f}) + le_bytes<int32_t>({3, -4}) +
                           le_bytes<uint16_t>({0x3f80, 0xc049, 0x0001, 0xff80}) +
                           le_bytes<uint16_t>({0x3f81, 0x7fc0, 0x7f7f});
  const std::string expected = safetensors_bytes(header, data);
  const double inf = std::numeric_limits<double>::infinity();
  const std::map<std::string, Tensor> tensors = {
      {"a", Tensor::from_vector({1.0, -3.140625, 0x1p-133, -inf}, {2, 2}, Dtype::bf16)},
      {"b", Tensor::from_vector({0.5}, {1})},
      {"ids", Tensor::from_indices({3, -4}, {2}, Dtype::i32)},
      {"w", Tensor::from_vector({1.0 + 0x1p-8 + 0x1p-30, std::nan(""), 0x1.fep127}, {3}, Dtype::bf16)},
  };
  const std::string ours = dir.file("ours.safetensors");
  engine::save_safetensors(ours, tensors);
  CHECK(read_bytes(ours) == expected);

  const engine::SafetensorsFile kept = engine::load_safetensors(ours, engine::Bf16Loading::keep_bf16);
  REQUIRE(kept.tensors.at("a").dtype() == Dtype::bf16);
  CHECK(kept.tensors.at("a").shape() == engine::Shape{2, 2});
  CHECK(kept.tensors.at("b").dtype() == Dtype::f32);
  const std::string again = dir.file("again.safetensors");
  engine::save_safetensors(again, kept.tensors);
  CHECK(read_bytes(again) == expected);

  const engine::SafetensorsFile widened = engine::load_safetensors(ours);
  REQUIRE(widened.tensors.at("w").dtype() == Dtype::f32);
  const std::vector<float> a = widened.tensors.at("a").to_vector<float>();
  CHECK(a == std::vector<float>{1.0f, -3.140625f, 0x1p-133f, -std::numeric_limits<float>::infinity()});
  const std::vector<float> w = widened.tensors.at("w").to_vector<float>();
  CHECK(w[0] == 1.0f + 0x1p-7f);
  CHECK(std::isnan(w[1]));
  CHECK(w[2] == 0x1.fep127f);
  CHECK(kept.tensors.at("w").to_vector<double>()[2] == 0x1.fep127);
}

TEST_CASE("safetensors reader rejects damaged files, naming the file and the tensor") {
  ScratchDir dir;
  const std::string path = dir.file("bad.safetensors");
  const std::string good_header = R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}})";
  const std::string good_data = le_bytes<float>({1, 2, 3, 4, 5, 6});
  const std::string good = safetensors_bytes(good_header, good_data);

  struct Case {
    const char* what;
    std::string bytes;
    std::vector<std::string> message_parts;  // besides the path, which every message names
  };
  const std::vector<Case> cases = {
      {"truncated data", good.substr(0, good.size() - 4), {"truncated", "tensor 'w'", "[0, 24]", "20 data bytes"}},
      {"shorter than the length field", good.substr(0, 5), {"5 bytes", "fewer than the 8-byte header length"}},
      {"header length past the end", le_bytes(uint64_t(4096)) + good.substr(8), {"header length 4096", "runs past"}},
      {"absurd header length", le_bytes(uint64_t(1) << 60) + good.substr(8), {"exceeds"}},
      {"malformed JSON", safetensors_bytes(R"({"w":{"dtype":"F32",)", ""), {"header: not valid JSON"}},
      {"header not an object", safetensors_bytes("[1, 2]", ""), {"not a JSON object"}},
      {"unknown dtype", safetensors_bytes(R"({"w":{"dtype":"F33","shape":[2,3],"data_offsets":[0,24]}})", good_data),
       {"tensor 'w'", "unknown dtype \"F33\""}},
      {"dtype of the format that we cannot hold",
       safetensors_bytes(R"({"w":{"dtype":"U8","shape":[24],"data_offsets":[0,24]}})", good_data),
       {"tensor 'w'", "unsupported dtype \"U8\""}},
      {"shape disagrees with offsets",
       safetensors_bytes(R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}})", good_data),
       {"tensor 'w'", "shape [2, 3] needs 24 bytes", "span 20"}},
      {"negative size", safetensors_bytes(R"({"w":{"dtype":"F32","shape":[-2,3],"data_offsets":[0,24]}})", good_data),
       {"tensor 'w'", "other than a size"}},
      {"missing field", safetensors_bytes(R"({"w":{"dtype":"F32","data_offsets":[0,24]}})", good_data),
       {"tensor 'w'", "lacks \"shape\""}},
      {"offsets end before they begin",
       safetensors_bytes(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", good_data),
       {"tensor 'w'", "end before they begin"}},
      {"overlapping offsets",
       safetensors_bytes(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                         R"("b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})",
                         good_data),
       {"tensor 'b'", "overlap tensor 'a'"}},
      {"gap between tensors",
       safetensors_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                         R"("b":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}})",
                         good_data),
       {"tensor 'b'", "gap after byte 8"}},
      {"offsets out of range",
       safetensors_bytes(R"({"w":{"dtype":"F32","shape":[8],"data_offsets":[0,32]}})", good_data),
       {"tensor 'w'", "reach past the 24 data bytes"}},
      {"bytes after the data", good + "junk", {"4 bytes after the last tensor's data"}},
      {"metadata value not a string",
       safetensors_bytes(R"({"__metadata__":{"epoch":3},"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}})",
                         good_data),
       {"metadata \"epoch\" is not a string"}},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    write_bytes(path, c.bytes);
    const std::string message = load_error(path);
    CAPTURE(message);
    CHECK(contains(message, "load_safetensors " + path));
    for (const std::string& part : c.message_parts) CHECK(contains(message, part));
  }
  CHECK_THROWS_WITH_AS(engine::load_safetensors(dir.file("missing.safetensors")),
                       doctest::Contains("missing.safetensors: cannot open: No such file"), engine::Error);
  // The good file itself loads: the cases above fail for the damage, not for the fixture.
  write_bytes(path, good);
  CHECK(engine::load_safetensors(path).tensors.at("w").to_vector<float>() == std::vector<float>{1, 2, 3, 4, 5, 6});
}

TEST_CASE("safetensors writes are atomic: a failed write leaves no temporary file and the target intact") {
  ScratchDir dir;
  const std::string target = dir.file("model.safetensors");
  const std::map<std::string, Tensor> good = {{"w", Tensor::from_vector({1, 2, 3}, {3})}};
  engine::save_safetensors(target, good);
  const std::string good_bytes = read_bytes(target);
  const std::vector<std::string> only_target = {"model.safetensors"};

  SUBCASE("directory does not exist") {
    const std::string nowhere = dir.file("missing/model.safetensors");
    CHECK_THROWS_WITH_AS(engine::save_safetensors(nowhere, good),
                         doctest::Contains(("cannot create temporary file " + nowhere + ".tmp.").c_str()), engine::Error);
    CHECK(!std::filesystem::exists(dir.file("missing")));
  }
  SUBCASE("a tensor cannot be serialized") {
    const std::map<std::string, Tensor> broken = {{"a", Tensor::ones({4})}, {"w", Tensor()}};
    CHECK_THROWS_WITH_AS(engine::save_safetensors(target, broken), doctest::Contains("tensor 'w' is undefined"),
                         engine::Error);
    const std::map<std::string, Tensor> reserved = {{"__metadata__", Tensor::ones({1})}};
    CHECK_THROWS_WITH_AS(engine::save_safetensors(target, reserved), doctest::Contains("reserved"), engine::Error);
  }
  SUBCASE("the disk fills up half-way through the data") {
    // A file-size limit makes write() fail with EFBIG after the first bytes, as a full disk would.
    struct rlimit saved {};
    REQUIRE(getrlimit(RLIMIT_FSIZE, &saved) == 0);
    struct rlimit small = saved;
    small.rlim_cur = 4096;
    const sighandler_t saved_handler = signal(SIGXFSZ, SIG_IGN);
    REQUIRE(setrlimit(RLIMIT_FSIZE, &small) == 0);
    std::string message;
    try {
      engine::save_safetensors(target, {{"w", Tensor::ones({8192})}});
    } catch (const engine::Error& e) {
      message = e.what();
    }
    setrlimit(RLIMIT_FSIZE, &saved);
    signal(SIGXFSZ, saved_handler);
    CHECK(contains(message, "cannot write to " + target + ".tmp."));
    CHECK(contains(message, "File too large"));
  }
  SUBCASE("the rename fails") {
    const std::string directory_target = dir.file("taken");
    std::filesystem::create_directories(directory_target + "/inside");
    CHECK_THROWS_WITH_AS(engine::save_safetensors(directory_target, good), doctest::Contains("cannot rename"),
                         engine::Error);
    CHECK(std::filesystem::is_directory(directory_target + "/inside"));
    std::filesystem::remove_all(directory_target);
  }
  SUBCASE("a successful write replaces the file") {
    engine::save_safetensors(target, {{"w", Tensor::from_vector({4, 5}, {2})}});
    CHECK(engine::load_safetensors(target).tensors.at("w").to_vector<float>() == std::vector<float>{4, 5});
    CHECK(dir.entries() == only_target);
    return;  // the checks below are for failed writes
  }
  CHECK(dir.entries() == only_target);
  CHECK(read_bytes(target) == good_bytes);
}
