// Top-1 accuracy of trained ViTs (train_vit's DIRs) at several resolutions, in two evaluations:
//   upsample  the test images resized (bicubic) to each size: the garment grows with the grid, so a
//             28-pixel model with patch 4 sees grids 7 to 28 showing the same field of view (the
//             analogue of docs/method.md#image-classification's 224 -> 672 with resize and centre crop);
//   canvas    the 28-pixel image unchanged, centred on a blank canvas (the dataset's black) of each
//             size, its offset rounded down to whole patches: the garment keeps its size and patch
//             contents while the grid grows around it, the case where extending positions is right.
// APE is bicubic-interpolated to each grid; the other encodings are extended to the new positions
// (SeqPE within its PE_MAX_POSITION grid).
//
// Usage: eval_vit --run DIR [--run DIR ...] [--sizes 28,42,56,84,112] [--evaluations upsample,canvas]
//                 [--test-subset N] [--batch B] [--threads N] [--csv FILE] [--plot FILE.svg] [--device cpu|cuda]
//                 [--tf32 0|1] [--precision fp32|bf16]
// Each run's model is DIR/best.ckpt.safetensors with the run config saved in it; the test set is
// the full Fashion-MNIST test set unless --test-subset N takes its first N images.
// Prints a markdown table per run, writes one CSV over all runs (default: first DIR/eval.csv;
// columns run,pe,evaluation,size,grid,top1,images_per_s) and an SVG plot of accuracy against
// resolution with one line per run and evaluation (default: first DIR/eval.svg). A size that is not
// a multiple of the patch keeps the top-left grid·patch pixels of the resized image, as a strided
// patch convolution (PyTorch's Conv2d) would: 42 px with patch 4 is grid 10, its last 2 rows and
// columns unseen; the canvas is grid·patch pixels wide.
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "apps/option_values.h"
#include "apps/svg_plot.h"
#include "apps/train/device_setup.h"
#include "apps/vit_run.h"
#include "data/image_transforms.h"
#include "engine/checkpoint.h"
#include "engine/denormals.h"
#include "engine/error.h"

namespace {

// The test images (N, C, h, w) upsampled to `size` pixels, cropped to the patch grid (see the file
// comment).
engine::Tensor upsampled_images(const engine::Tensor& images, int64_t size, int64_t patch) {
  const engine::Tensor resized =
      size == images.size(2) ? images : data::resize_images(images, size, size, data::ResizeMode::bicubic);
  const int64_t seen = size / patch * patch;
  return seen == size ? resized : resized.narrow(2, 0, seen).narrow(3, 0, seen).contiguous();
}

// The test set's images (N, C, h, w) centred on a blank canvas of the grid that `size` pixels give,
// offset by whole patches so that every patch holds what it held at the training size.
engine::Tensor canvas_images(const data::ImageDataset& test_set, int64_t size, int64_t patch) {
  const int64_t seen = size / patch * patch, height = test_set.images.size(2), width = test_set.images.size(3);
  ENGINE_CHECK(seen >= height && seen >= width, "eval_vit: the canvas evaluation needs sizes of at least the images' ",
               height, "x", width, " pixels (in whole patches of ", patch, "), got ", size);
  std::vector<float> black;  // the dataset's normalised 0
  for (size_t c = 0; c < test_set.mean.size(); ++c) black.push_back(-test_set.mean[c] / test_set.std[c]);
  return data::place_on_canvas(test_set.images, seen, seen, (seen - height) / 2 / patch * patch,
                               (seen - width) / 2 / patch * patch, black);
}

// The series label of a run: its directory's name.
std::string run_label(const std::string& run_dir) {
  const std::filesystem::path path = std::filesystem::path(run_dir).lexically_normal();
  return (path.has_filename() ? path.filename() : path.parent_path().filename()).string();
}

}  // namespace

int main(int argc, char** argv) try {
  std::vector<std::string> run_dirs;
  std::string csv_path, plot_path, sizes_list = "28,42,56,84,112", evaluations_list = "upsample,canvas";
  int64_t test_subset = -1, batch = 250;
  int threads = 0;
  train::DeviceSettings device_settings;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    ENGINE_CHECK(i + 1 < argc, "eval_vit: option ", flag, " needs a value");
    const std::string value = argv[++i];
    if (flag == "--run") run_dirs.push_back(value);
    else if (flag == "--sizes") sizes_list = value;
    else if (flag == "--evaluations") evaluations_list = value;
    else if (flag == "--test-subset") test_subset = apps::integer_option(flag, value);
    else if (flag == "--batch") batch = apps::integer_option(flag, value);
    else if (flag == "--threads") threads = int(apps::integer_option(flag, value));
    else if (flag == "--csv") csv_path = value;
    else if (flag == "--plot") plot_path = value;
    else if (flag == "--device") device_settings.device = value;
    else if (flag == "--tf32") device_settings.tf32 = apps::integer_option(flag, value) != 0;
    else if (flag == "--precision") device_settings.precision = value;
    else ENGINE_CHECK(false, "eval_vit: unknown option ", flag);
  }
  ENGINE_CHECK(!run_dirs.empty(), "eval_vit: --run DIR is required (a train_vit output directory)");
  ENGINE_CHECK(batch > 0, "eval_vit: --batch must be positive, got ", batch);
  const engine::Device device = train::setup_device("eval_vit", device_settings);
  if (threads > 0) omp_set_num_threads(threads);
  engine::set_flush_denormal(true);  // speed only: accuracies do not see values below 1e-38
  if (csv_path.empty()) csv_path = run_dirs.front() + "/eval.csv";
  if (plot_path.empty()) plot_path = run_dirs.front() + "/eval.svg";
  const std::vector<int64_t> sizes = apps::integer_list_option("--sizes", sizes_list, 1);
  std::vector<std::string> evaluations;
  for (size_t start = 0; start <= evaluations_list.size();) {
    const size_t comma = std::min(evaluations_list.find(',', start), evaluations_list.size());
    evaluations.push_back(evaluations_list.substr(start, comma - start));
    ENGINE_CHECK(evaluations.back() == "upsample" || evaluations.back() == "canvas", "eval_vit: --evaluations takes ",
                 "upsample and canvas, got '", evaluations.back(), "'");
    start = comma + 1;
  }

  plot::LinePlot figure;
  figure.title = "ViT top-1 accuracy against resolution";
  figure.x = {"image size (pixels)", plot::Scale::linear};
  figure.y = {"top-1 accuracy (%)", plot::Scale::linear};
  std::ofstream csv(csv_path);
  ENGINE_CHECK(csv.good(), "eval_vit: cannot write ", csv_path);
  csv << "run,pe,evaluation,size,grid,top1,images_per_s\n";
  for (const std::string& run_dir : run_dirs) {
    const engine::TrainingState best = engine::load_checkpoint(run_dir + "/best.ckpt.safetensors");
    vit_app::RunConfig config = vit_app::run_config_from_json(best.extra.at("config"), vit_app::default_run_config());
    if (test_subset >= 0) config.data.test_subset = test_subset;
    engine::Generator init_gen(0);
    vit_app::Model model = vit_app::build_model(config, init_gen);
    model.vit->load_state_dict(best.model);
    model.vit->to_(device);
    const data::ImageDataset test_set = vit_app::load_test_set(config);
    const std::string& pe = config.model.position_encoding;
    const std::string label = run_label(run_dir);
    const int64_t patch = config.model.patch;

    std::printf("eval_vit: %s (%s), checkpoint step %lld, %lld test images\n\n", label.c_str(), pe.c_str(),
                (long long)best.step, (long long)test_set.size());
    std::printf("| run | PE | evaluation | size | grid | top-1 (%%) | images/s |\n|---|---|---|---|---|---|---|\n");
    for (const std::string& evaluation : evaluations) {
      plot::Series series{label + " " + evaluation, {}, {}};
      for (int64_t size : sizes) {
        ENGINE_CHECK(size >= patch, "eval_vit: size ", size, " is smaller than the patch ", patch);
        const int64_t grid = size / patch;
        const engine::Tensor images = evaluation == "canvas" ? canvas_images(test_set, size, patch)
                                                             : upsampled_images(test_set.images, size, patch);
        const vit_app::Accuracy accuracy = vit_app::evaluate(*model.vit, images, test_set.labels, batch);
        std::printf("| %s | %s | %s | %lld | %lld | %.2f | %.0f |\n", label.c_str(), pe.c_str(), evaluation.c_str(),
                    (long long)size, (long long)grid, 100 * accuracy.top1, accuracy.images_per_second);
        std::fflush(stdout);
        csv << label << "," << pe << "," << evaluation << "," << size << "," << grid << "," << accuracy.top1 << ","
            << accuracy.images_per_second << "\n";
        series.x.push_back(double(size));
        series.y.push_back(100 * accuracy.top1);
      }
      figure.series.push_back(std::move(series));
    }
    std::printf("\n");
  }
  csv.close();
  ENGINE_CHECK(csv.good(), "eval_vit: writing ", csv_path, " failed");
  std::printf("csv: %s\n", csv_path.c_str());
  plot::write_svg(figure, plot_path);
  std::printf("plot: %s\n", plot_path.c_str());
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "eval_vit: %s\n", e.what());
  return 1;
}
