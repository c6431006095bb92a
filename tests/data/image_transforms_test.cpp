// Tests of image transforms (data/image_transforms.h) against torch's F.interpolate and by hand.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "data/image_transforms.h"
#include "engine/error.h"

using doctest::Contains;

namespace {

// Reference values from tests/fixtures/make_image_resize_reference.py (torch 1.13, float64).
// bilinear 2x3x4 -> 5x7
constexpr double kBilinearUp[] = {
    0,
    0.279759610581244,
    0.727374987511235,
    0.878587270252839,
    0.934814220117884,
    0.622546934035389,
    0.42737988023383,
    -0.157008177317941,
    -0.065582364450658,
    0.0806989361369948,
    0.197093441107487,
    0.294342119563773,
    0.287456808037782,
    0.283153488334038,
    -0.392520443294852,
    -0.583595326998511,
    -0.889315140924365,
    -0.825147302610542,
    -0.666366031267392,
    -0.215178380958628,
    0.0668139004843497,
    0.379192540991551,
    0.34052443329493,
    0.278655460980337,
    0.144543567781836,
    0.00345377668022246,
    -0.11423837885927,
    -0.187795976071453,
    0.893667863849153,
    0.956604273490558,
    1.05730252891681,
    0.791004148043421,
    0.450000315311966,
    -0.0469450441263649,
    -0.357535893775321,
    0.389418342308651,
    0.594468286275987,
    0.922548196623726,
    0.886027294618392,
    0.753716708006283,
    0.315479141499826,
    0.0415806624332905,
    -0.0490699927379809,
    0.0417242425972204,
    0.186995019133543,
    0.262205418363417,
    0.311230641610563,
    0.247020010285056,
    0.206888365706614,
    -0.706802495307928,
    -0.78739182292093,
    -0.916334747101732,
    -0.673527396019045,
    -0.352498457983017,
    0.1443313134629,
    0.454849920616598,
    0.35803080509572,
    0.289488097034521,
    0.179819764136601,
    0.0375678030154364,
    -0.100096752287632,
    -0.173065838640788,
    -0.21867151761151,
    1.06791967203149,
    1.00740804367149,
    0.91058943829549,
    0.511631269038424,
    0.0681710515092908,
    -0.384663940043247,
    -0.667685809763582,
};
// bilinear 2x5x6 -> 3x4
constexpr double kBilinearDown[] = {
    -0.0445688119107204, 0.833963091379662,  0.433418859382524, -0.625892565722041, -0.826198068529627,
    -0.0652786105639055, 0.944252764051035,  0.638969873985278, 0.0926519133942986, -0.661072426586799,
    -0.0949427970407386, 0.914295505041074,  0.289555817255135, 0.857225310871915,  0.113009645608976,
    -0.790550222516603,  -0.746795162997138, 0.302713411486331, 1.02606864289006,   0.303035404683281,
    -0.228448889063692,  -0.623975843174822, 0.238886024249753, 1.02385250419538,
};
// bicubic 2x3x4 -> 5x7
constexpr double kBicubicUp[] = {
    -0.0525938377736675, 0.336087555884943,   0.886772003790913,  1.19070348315235,    1.10685462643232,
    0.703535924365716,   0.395050064510774,   -0.266791004881952, -0.185167148757756,  -0.0485136766186682,
    0.113289794775815,   0.243470919673243,   0.302328239298357,  0.327100155275765,   -0.339438670755749,
    -0.587414118811285,  -0.906377612103946,  -0.949327433461534, -0.668129702374259,  -0.189637117276875,
    0.145153082752565,   0.385678425884558,   0.316081153244345,  0.194897120158626,   0.0351766760002249,
    -0.108642282864017,  -0.190706057266264,  -0.231714993165787, 0.992883495735244,   1.13925734973626,
    1.27679866061535,    1.06553977236573,    0.542649845758583,  -0.0864722467378297, -0.500361342933584,
    0.430073588386034,   0.729960846538616,   1.11847889804803,   1.18339392618255,    0.862899587871667,
    0.303247463107336,   -0.0897699066495686, -0.189469166295739, -0.0874184968682073, 0.072022092203061,
    0.221099988242531,   0.303585607839369,   0.299198288223777,  0.281526655737137,   -0.684414286692989,
    -0.815537961887783,  -0.94346226058015,   -0.776193228895303, -0.340935443949396,  0.190436490250674,
    0.541113890818225,   0.325087590619603,   0.229396300069385,  0.0761599230276449,  -0.0810303687736503,
    -0.18462559469947,   -0.206009330153294,  -0.20534523235181,  1.25456804098723,    1.23760560888306,
    1.12510910650379,    0.699278617279431,   0.0806196493006618, -0.506266498502708,  -0.869903809201449,
};
// bicubic 2x5x6 -> 3x4
constexpr double kBicubicDown[] = {
    -0.0467996360228039, 0.953405234619517,  0.422459169898177, -0.727991448940092, -0.859300316799729,
    -0.120161984156698,  1.04168781081941,   0.631326736991008, 0.15784581460521,   -0.773820374152622,
    -0.135138517660507,  0.977260215820483,  0.315633258000161, 0.979240587555901,  0.0455958585222582,
    -0.882211848780862,  -0.789785444637573, 0.283514063229975, 1.11600936593603,   0.278287231996901,
    -0.198141117276504,  -0.762223729620698, 0.248616469059974, 1.09874403408129,
};
// The fixture's input: pixel[c, y, x] = sin(0.9 * (y * W + x) + 0.4 * c) + 0.05 * y.
std::vector<float> fixture_image(int64_t channels, int64_t height, int64_t width) {
  std::vector<float> image;
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t y = 0; y < height; ++y)
      for (int64_t x = 0; x < width; ++x)
        image.push_back(float(std::sin(0.9 * double(y * width + x) + 0.4 * double(c)) + 0.05 * double(y)));
  return image;
}

// 1, 2, 3, ... : (C, H, W) values that show where every pixel went.
std::vector<float> counting_image(int64_t channels, int64_t height, int64_t width) {
  std::vector<float> image(size_t(channels * height * width));
  for (size_t i = 0; i < image.size(); ++i) image[i] = float(i + 1);
  return image;
}

// A generator at (seed, offset): where the loader puts an image's draws.
engine::Generator generator_at(uint64_t seed, uint64_t offset) {
  engine::Generator gen(seed);
  gen.set_state(seed, offset);
  return gen;
}

// transform.apply of image into out with the generator at (seed, offset), checking that it drew no
// more than an image's blocks.
void apply_at(const data::ImageTransform& transform, const std::vector<float>& image, std::vector<float>& out,
              uint64_t seed, uint64_t offset) {
  engine::Generator gen = generator_at(seed, offset);
  std::vector<float> work;
  transform.apply(image.data(), out.data(), gen, work);
  CHECK(gen.offset() - offset <= data::kAugmentationBlocksPerImage);
}

}  // namespace

TEST_CASE("image transforms: bilinear and bicubic resize match torch's F.interpolate, up and down") {
  struct Case {
    int64_t height, width, out_height, out_width;
    data::ResizeMode mode;
    const double* expected;
  };
  const Case cases[] = {{3, 4, 5, 7, data::ResizeMode::bilinear, kBilinearUp},
                        {5, 6, 3, 4, data::ResizeMode::bilinear, kBilinearDown},
                        {3, 4, 5, 7, data::ResizeMode::bicubic, kBicubicUp},
                        {5, 6, 3, 4, data::ResizeMode::bicubic, kBicubicDown}};
  for (const Case& c : cases) {
    CAPTURE(c.height);
    CAPTURE(int(c.mode));
    const std::vector<float> image = fixture_image(2, c.height, c.width);
    std::vector<float> out(size_t(2 * c.out_height * c.out_width));
    data::resize_image(image.data(), 2, c.height, c.width, out.data(), c.out_height, c.out_width, c.mode);
    // The input is rounded to f32 and the result too; values are O(1), so 1e-6 absolute.
    for (size_t i = 0; i < out.size(); ++i) CHECK(std::abs(out[i] - c.expected[i]) <= 1e-6);
  }
}

TEST_CASE("image transforms: resize by hand, identity and the batched tensor version") {
  // 1-D bilinear 2 -> 4: sources -0.25 (clamped to 0), 0.25, 0.75, 1.25 (reads pixel 1 twice).
  const std::vector<float> row = {1.0f, 3.0f};
  std::vector<float> out(4);
  data::resize_image(row.data(), 1, 1, 2, out.data(), 1, 4, data::ResizeMode::bilinear);
  CHECK(out == std::vector<float>{1.0f, 1.5f, 2.5f, 3.0f});
  // Bicubic 2 -> 4 at source 0.25 (t = 0.25): Keys weights (a = -0.75) -0.10546875, 0.87890625,
  // 0.26171875, -0.03515625 on pixels (clamped) 0, 0, 1, 1: 1 * 0.7734375 + 3 * 0.2265625.
  data::resize_image(row.data(), 1, 1, 2, out.data(), 1, 4, data::ResizeMode::bicubic);
  CHECK(out[1] == doctest::Approx(0.7734375 + 3 * 0.2265625).epsilon(1e-7));
  // The same size is the identity in both modes.
  const std::vector<float> image = counting_image(2, 3, 5);
  for (const auto mode : {data::ResizeMode::bilinear, data::ResizeMode::bicubic}) {
    std::vector<float> same(image.size());
    data::resize_image(image.data(), 2, 3, 5, same.data(), 3, 5, mode);
    CHECK(same == image);
  }
  // The tensor version resizes each image of a (non-contiguous) batch like resize_image.
  const std::vector<float> first = fixture_image(2, 3, 4);
  std::vector<double> batch_values;
  for (int n = 0; n < 2; ++n)
    for (const float v : first) batch_values.push_back(n == 0 ? v : 2 * v);
  const engine::Tensor batch = engine::Tensor::from_vector(batch_values, {2, 2, 3, 4});
  const engine::Tensor swapped = batch.transpose(0, 1).contiguous().transpose(0, 1);  // same values, other strides
  REQUIRE_FALSE(swapped.is_contiguous());
  const engine::Tensor resized = data::resize_images(swapped, 5, 7, data::ResizeMode::bicubic);
  CHECK(resized.shape() == engine::Shape{2, 2, 5, 7});
  const std::vector<float> values = resized.to_vector<float>();
  for (size_t i = 0; i < 70; ++i) {
    CHECK(std::abs(values[i] - kBicubicUp[i]) <= 1e-6);
    CHECK(std::abs(values[70 + i] - 2 * kBicubicUp[i]) <= 2e-6);
  }
  CHECK_THROWS_WITH_AS(data::resize_images(engine::Tensor::ones({2, 3}), 4, 4, data::ResizeMode::bilinear),
                       Contains("resize_images: images must be (N, C, H, W) f32"), engine::Error);
  // An error inside the parallel loop over images (each image's resize throws here) reaches the
  // caller: an exception leaving an OpenMP region terminated the program instead.
  CHECK_THROWS_WITH_AS(data::resize_images(engine::Tensor::ones({8, 1, 2, 2}), 0, 4, data::ResizeMode::bilinear),
                       Contains("resize_image: sizes must be positive"), engine::Error);
}

TEST_CASE("image transforms: crop with padding, flip and normalisation by hand") {
  // Image (1, 3, 3) = 1..9, padding 1, fill 0.5 per channel.
  const std::vector<float> image = counting_image(1, 3, 3);
  const float fill[] = {0.5f};
  std::vector<float> out(9);
  data::crop_with_padding(image.data(), 1, 3, 3, 1, 1, 1, fill, out.data());  // centred: the image itself
  CHECK(out == image);
  data::crop_with_padding(image.data(), 1, 3, 3, 1, 0, 0, fill, out.data());  // shifted down-right
  CHECK(out == std::vector<float>{0.5f, 0.5f, 0.5f, 0.5f, 1, 2, 0.5f, 4, 5});
  data::crop_with_padding(image.data(), 1, 3, 3, 1, 2, 1, nullptr, out.data());  // shifted up, zero fill
  CHECK(out == std::vector<float>{4, 5, 6, 7, 8, 9, 0, 0, 0});
  // Two channels, padding larger than the image: the window (4, 0) of a 2x2 padded by 3.
  const std::vector<float> two = counting_image(2, 2, 2);
  const float fills[] = {-1, -2};
  std::vector<float> crop(8);
  data::crop_with_padding(two.data(), 2, 2, 2, 3, 4, 0, fills, crop.data());
  CHECK(crop == std::vector<float>{-1, -1, -1, -1, -2, -2, -2, -2});
  data::crop_with_padding(two.data(), 2, 2, 2, 3, 2, 4, fills, crop.data());
  CHECK(crop == std::vector<float>{-1, -1, 2, -1, -2, -2, 6, -2});
  CHECK_THROWS_WITH_AS(data::crop_with_padding(image.data(), 1, 3, 3, 1, 3, 0, fill, out.data()),
                       Contains("window (3, 0) outside [0, 2] for padding 1"), engine::Error);

  std::vector<float> flipped = counting_image(2, 2, 3);
  data::flip_horizontal_(flipped.data(), 2, 2, 3);
  CHECK(flipped == std::vector<float>{3, 2, 1, 6, 5, 4, 9, 8, 7, 12, 11, 10});

  std::vector<float> normalised = {1, 2, 3, 4};
  const float mean[] = {1, 2}, std[] = {0.5, 4};
  data::normalize_(normalised.data(), 2, 2, mean, std);
  CHECK(normalised == std::vector<float>{0, 2, 0.25f, 0.5f});
}

TEST_CASE("image transforms: place on a canvas keeps every pixel and fills the rest") {
  // Two (2, 3, 4) images with distinct values, given with non-contiguous strides, on a 6x7 canvas
  // at (2, 1) filled with -1 and -2 per channel.
  std::vector<double> values;
  for (const float v : counting_image(2 * 2, 3, 4)) values.push_back(v);
  const engine::Tensor images =
      engine::Tensor::from_vector(values, {2, 2, 3, 4}).transpose(0, 1).contiguous().transpose(0, 1);
  REQUIRE_FALSE(images.is_contiguous());
  const std::vector<float> source = images.contiguous().to_vector<float>();
  const engine::Tensor canvas = data::place_on_canvas(images, 6, 7, 2, 1, {-1.0f, -2.0f});
  REQUIRE(canvas.shape() == engine::Shape{2, 2, 6, 7});
  const std::vector<float> out = canvas.to_vector<float>();
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t c = 0; c < 2; ++c)
      for (int64_t y = 0; y < 6; ++y)
        for (int64_t x = 0; x < 7; ++x) {
          const bool inside = y >= 2 && y < 5 && x >= 1 && x < 5;
          const float expected = inside ? source[size_t(((n * 2 + c) * 3 + y - 2) * 4 + x - 1)] : -1.0f - float(c);
          CHECK(out[size_t(((n * 2 + c) * 6 + y) * 7 + x)] == expected);
        }
  // An empty fill is 0; the canvas may equal the image.
  CHECK(data::place_on_canvas(images, 3, 4, 0, 0, {}).to_vector<float>() == source);
  CHECK(data::place_on_canvas(images, 4, 4, 1, 0, {}).to_vector<float>()[0] == 0.0f);
  CHECK_THROWS_WITH_AS(data::place_on_canvas(images, 6, 7, 4, 0, {}), Contains("does not fit a 6x7 canvas"),
                       engine::Error);
  CHECK_THROWS_WITH_AS(data::place_on_canvas(images, 6, 7, 0, 0, {1.0f}), Contains("fill has 1 values for 2"),
                       engine::Error);
}

TEST_CASE("image transforms: random zoom resizes a random window of the image back to its size") {
  // (2, 8, 8) image, zoom up to 3: each output is the bilinear resize of a window of side
  // round(8 / z), z in [1, 3], drawn after the crop and flip (none here).
  const std::vector<float> image = fixture_image(2, 8, 8);
  data::ImageTransformOptions options;
  options.max_zoom = 3;
  const data::ImageTransform transform(options, 2, 8, 8);
  CHECK(transform.is_random());
  std::vector<float> out(128), window, expected(128);
  int64_t smallest = 8;
  for (uint64_t offset = 0; offset < 120; offset += data::kAugmentationBlocksPerImage) {
    apply_at(transform, image, out, 3, offset);
    engine::Generator replay = generator_at(3, offset);
    const double zoom = 1 + 2 * replay.uniform();
    const auto side = int64_t(std::llround(8 / zoom));
    const auto top = int64_t(replay.randint(uint64_t(9 - side))), left = int64_t(replay.randint(uint64_t(9 - side)));
    REQUIRE(side >= 3);
    REQUIRE(side <= 8);
    smallest = std::min(smallest, side);
    window.clear();
    for (int64_t c = 0; c < 2; ++c)
      for (int64_t y = top; y < top + side; ++y)
        for (int64_t x = left; x < left + side; ++x) window.push_back(image[size_t((c * 8 + y) * 8 + x)]);
    data::resize_image(window.data(), 2, side, side, expected.data(), 8, 8, data::ResizeMode::bilinear);
    CHECK(out == expected);
  }
  CHECK(smallest <= 4);  // 20 draws reach zooms above 2
  options.max_zoom = 0.5;
  CHECK_THROWS_WITH_AS(data::ImageTransform(options, 2, 8, 8), Contains("max_zoom must be at least 1, got 0.5"),
                       engine::Error);
}

TEST_CASE("image transforms: the augmentation pipeline draws from the generator reproducibly") {
  const std::vector<float> image = counting_image(1, 4, 4);
  data::ImageTransformOptions options;
  options.crop_padding = 2;
  options.horizontal_flip = true;
  const data::ImageTransform transform(options, 1, 4, 4);
  CHECK(transform.is_random());
  std::vector<float> out(16), again(16), expected(16);
  bool saw_flip = false, saw_no_flip = false;
  for (uint64_t offset = 0; offset < 40; offset += data::kAugmentationBlocksPerImage) {
    apply_at(transform, image, out, 7, offset);
    // Replays the draws: top, left, then the flip coin.
    engine::Generator replay = generator_at(7, offset);
    const auto top = int64_t(replay.randint(5)), left = int64_t(replay.randint(5));
    const bool flip = replay.uniform() < 0.5;
    (flip ? saw_flip : saw_no_flip) = true;
    data::crop_with_padding(image.data(), 1, 4, 4, 2, top, left, nullptr, expected.data());
    if (flip) data::flip_horizontal_(expected.data(), 1, 4, 4);
    CHECK(out == expected);
    apply_at(transform, image, again, 7, offset);
    CHECK(again == out);
  }
  CHECK(saw_flip);
  CHECK(saw_no_flip);

  // Resize then normalise, no randomness: (2 -> 4 bilinear) then (x - 1) / 2.
  data::ImageTransformOptions evaluation;
  evaluation.resize_height = 1;
  evaluation.resize_width = 4;
  evaluation.mean = {1};
  evaluation.std = {2};
  const data::ImageTransform resize(evaluation, 1, 1, 2);
  CHECK_FALSE(resize.is_random());
  CHECK(resize.out_width() == 4);
  const std::vector<float> row = {1.0f, 3.0f};
  std::vector<float> resized(4);
  engine::Generator gen(0);
  std::vector<float> work;
  resize.apply(row.data(), resized.data(), gen, work);
  CHECK(resized == std::vector<float>{0.0f, 0.25f, 0.75f, 1.0f});
  CHECK(gen.offset() == 0);

  data::ImageTransformOptions bad;
  bad.mean = {0.5f};
  bad.std = {0.5f};
  CHECK_THROWS_WITH_AS(data::ImageTransform(bad, 3, 4, 4), Contains("mean and std need one value per channel (3)"),
                       engine::Error);
  bad = {};
  bad.resize_height = 8;
  CHECK_THROWS_WITH_AS(data::ImageTransform(bad, 1, 4, 4), Contains("give both resize_height and resize_width"),
                       engine::Error);
}
