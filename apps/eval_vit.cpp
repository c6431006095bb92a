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

#include "apps/app_main.h"
#include "apps/attention_options.h"
#include "apps/cli_options.h"
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

// The command line (see the file comment).
struct Arguments {
  std::vector<std::string> run_dirs;
  std::string csv_path, plot_path, evaluations_list = "upsample,canvas";
  std::vector<int64_t> sizes = {28, 42, 56, 84, 112};
  std::vector<std::string> evaluations;  // from evaluations_list
  int64_t test_subset = -1, batch = 250;
  int threads = 0;
  apps::train::DeviceSettings device;
};

Arguments parse_arguments(int argc, char** argv) {
  Arguments args;
  apps::CommandLine cli("eval_vit", "Top-1 accuracy of train_vit runs at several image resolutions.",
                        "eval_vit --run runs/vit/seqpe --run runs/vit/rope2d --sizes 28,56,112 --evaluations upsample,canvas");
  cli.option("--run", args.run_dirs, "a train_vit run folder (its best.ckpt.safetensors); repeatable")->required();
  cli.option("--sizes", args.sizes, "image sizes in pixels (each at least the patch)", 1);
  cli.option("--evaluations", args.evaluations_list,
             "comma list of upsample (the image resized) and canvas (the 28 px image centred on a blank canvas)");
  cli.option("--test-subset", args.test_subset, "the first N test images only (-1: the run's setting, 0: all)", -1);
  cli.option("--batch", args.batch, "images per evaluation batch", 1);
  cli.option("--threads", args.threads, "OpenMP threads (0: OMP_NUM_THREADS)", 0);
  cli.option("--csv", args.csv_path, "CSV over all runs (default: the first run's eval.csv)");
  cli.option("--plot", args.plot_path, "SVG plot (default: the first run's eval.svg)");
  cli.device_options(args.device);
  apps::attention_options(cli);
  cli.parse(argc, argv);
  if (args.csv_path.empty()) args.csv_path = args.run_dirs.front() + "/eval.csv";
  if (args.plot_path.empty()) args.plot_path = args.run_dirs.front() + "/eval.svg";
  const std::string& list = args.evaluations_list;
  for (size_t start = 0; start <= list.size();) {
    const size_t comma = std::min(list.find(',', start), list.size());
    args.evaluations.push_back(list.substr(start, comma - start));
    ENGINE_CHECK(args.evaluations.back() == "upsample" || args.evaluations.back() == "canvas",
                 "--evaluations takes upsample and canvas, got '", args.evaluations.back(), "'");
    start = comma + 1;
  }
  return args;
}

// Evaluates every run at every size, printing a table per run, and writes the CSV and the plot.
void eval_vit(int argc, char** argv) {
  const Arguments args = parse_arguments(argc, argv);
  const engine::Device device = apps::train::setup_device("eval_vit", args.device);
  if (args.threads > 0) omp_set_num_threads(args.threads);
  engine::set_flush_denormal(true);  // speed only: accuracies do not see values below 1e-38

  apps::LinePlot figure;
  figure.title = "ViT top-1 accuracy against resolution";
  figure.x = {"image size (pixels)", apps::Scale::linear};
  figure.y = {"top-1 accuracy (%)", apps::Scale::linear};
  std::ofstream csv(args.csv_path);
  ENGINE_CHECK(csv.good(), "cannot write ", args.csv_path);
  csv << "run,pe,evaluation,size,grid,top1,images_per_s\n";
  for (const std::string& run_dir : args.run_dirs) {
    const engine::TrainingState best = engine::load_checkpoint(run_dir + "/best.ckpt.safetensors");
    apps::VitRunConfig config = apps::vit_run_config_from_json(best.extra.at("config"), apps::default_vit_run_config());
    if (args.test_subset >= 0) config.data.test_subset = args.test_subset;
    engine::Generator init_gen(0);
    apps::VitModel model = apps::build_vit_model(config, init_gen);
    model.vit->load_state_dict(best.model);
    model.vit->to_(device);
    const data::ImageDataset test_set = apps::load_test_set(config);
    const std::string& pe = config.model.position_encoding;
    const std::string label = run_label(run_dir);
    const int64_t patch = config.model.patch;

    std::printf("eval_vit: %s (%s), checkpoint step %lld, %lld test images\n\n", label.c_str(), pe.c_str(),
                (long long)best.step, (long long)test_set.size());
    std::printf("| run | PE | evaluation | size | grid | top-1 (%%) | images/s |\n|---|---|---|---|---|---|---|\n");
    for (const std::string& evaluation : args.evaluations) {
      apps::Series series{label + " " + evaluation, {}, {}};
      for (int64_t size : args.sizes) {
        ENGINE_CHECK(size >= patch, "size ", size, " is smaller than the patch ", patch);
        const int64_t grid = size / patch;
        const engine::Tensor images = evaluation == "canvas" ? canvas_images(test_set, size, patch)
                                                             : upsampled_images(test_set.images, size, patch);
        const apps::Accuracy accuracy = apps::evaluate(*model.vit, images, test_set.labels, args.batch);
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
  ENGINE_CHECK(csv.good(), "writing ", args.csv_path, " failed");
  std::printf("csv: %s\n", args.csv_path.c_str());
  apps::write_svg(figure, args.plot_path);
  std::printf("plot: %s\n", args.plot_path.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  return apps::run_app("eval_vit", [&] { eval_vit(argc, argv); });
}
