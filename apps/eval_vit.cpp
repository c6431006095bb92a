// Top-1 accuracy of a trained ViT (train_vit's DIR) at several resolutions: the test set upsampled
// by bicubic interpolation to each size, so a 28-pixel model with patch 4 sees grids 7 to 28 (the
// analogue of SEQPE_SPEC.md §11's 224 -> 672). APE is bicubic-interpolated to each grid; the other
// encodings are extended to the new positions (SeqPE within its PE_MAX_POSITION grid).
//
// Usage: eval_vit --run DIR [--sizes 28,40,56,84,112] [--test-subset N] [--batch B] [--threads N]
//                 [--csv FILE] [--plot FILE.svg]
// Prints a markdown table, writes the CSV (default DIR/eval.csv: pe,size,grid,top1,images_per_s) and
// an SVG plot of accuracy against resolution (default DIR/eval.svg). Sizes must be multiples of the
// patch (42 is not, for patch 4).
#include <omp.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "apps/svg_plot.h"
#include "apps/vit_run.h"
#include "data/image_transforms.h"
#include "engine/checkpoint.h"
#include "engine/error.h"

namespace {

std::vector<int64_t> parse_sizes(const std::string& list) {
  std::vector<int64_t> sizes;
  std::stringstream in(list);
  for (std::string item; std::getline(in, item, ',');) sizes.push_back(std::stoll(item));
  return sizes;
}

// Writes the SVG plot of top-1 accuracy (%) against image size.
void plot_accuracy(const std::string& path, const std::string& pe, const std::vector<double>& sizes,
                   const std::vector<double>& top1_percent) {
  plot::LinePlot figure;
  figure.title = "ViT top-1 accuracy against resolution (" + pe + ")";
  figure.x = {"image size (pixels)", plot::Scale::linear};
  figure.y = {"top-1 accuracy (%)", plot::Scale::linear};
  figure.series = {{pe, sizes, top1_percent}};
  plot::write_svg(figure, path);
  std::printf("plot: %s\n", path.c_str());
}

}  // namespace

int main(int argc, char** argv) try {
  std::string run_dir, csv_path, plot_path, sizes_list = "28,40,56,84,112";
  int64_t test_subset = -1, batch = 250;
  int threads = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    ENGINE_CHECK(i + 1 < argc, "eval_vit: option ", flag, " needs a value");
    const std::string value = argv[++i];
    if (flag == "--run") run_dir = value;
    else if (flag == "--sizes") sizes_list = value;
    else if (flag == "--test-subset") test_subset = std::stoll(value);
    else if (flag == "--batch") batch = std::stoll(value);
    else if (flag == "--threads") threads = std::stoi(value);
    else if (flag == "--csv") csv_path = value;
    else if (flag == "--plot") plot_path = value;
    else ENGINE_CHECK(false, "eval_vit: unknown option ", flag);
  }
  ENGINE_CHECK(!run_dir.empty(), "eval_vit: --run DIR is required (a train_vit output directory)");
  if (threads > 0) omp_set_num_threads(threads);
  if (csv_path.empty()) csv_path = run_dir + "/eval.csv";
  if (plot_path.empty()) plot_path = run_dir + "/eval.svg";

  std::ifstream in(run_dir + "/run.json");
  ENGINE_CHECK(in.good(), "eval_vit: cannot read ", run_dir, "/run.json");
  vit_app::RunConfig config = vit_app::run_config_from_json(nlohmann::json::parse(in), vit_app::default_run_config());
  if (test_subset >= 0) config.data.test_subset = test_subset;
  engine::Generator init_gen(0);
  vit_app::Model model = vit_app::build_model(config, init_gen);
  const engine::TrainingState best = engine::load_checkpoint(run_dir + "/best.safetensors");
  model.vit->load_state_dict(best.model);
  const data::ImageDataset test_set = vit_app::load_test_set(config);
  const std::string& pe = config.model.position_encoding;
  const int64_t patch = config.model.patch;

  std::ofstream csv(csv_path);
  csv << "pe,size,grid,top1,images_per_s\n";
  std::printf("eval_vit: %s, checkpoint step %lld, %lld test images\n\n", pe.c_str(), (long long)best.step,
              (long long)test_set.size());
  std::printf("| PE | size | grid | top-1 (%%) | images/s |\n|---|---|---|---|---|\n");
  std::vector<double> plotted_sizes, plotted_top1;
  for (int64_t size : parse_sizes(sizes_list)) {
    ENGINE_CHECK(size % patch == 0, "eval_vit: size ", size, " is not a multiple of the patch ", patch);
    const engine::Tensor images = size == test_set.images.size(2)
                                      ? test_set.images
                                      : data::resize_images(test_set.images, size, size, data::ResizeMode::bicubic);
    const vit_app::Accuracy accuracy = vit_app::evaluate(*model.vit, images, test_set.labels, batch);
    std::printf("| %s | %lld | %lld | %.2f | %.0f |\n", pe.c_str(), (long long)size, (long long)(size / patch),
                100 * accuracy.top1, accuracy.images_per_second);
    std::fflush(stdout);
    csv << pe << "," << size << "," << size / patch << "," << accuracy.top1 << "," << accuracy.images_per_second
        << "\n";
    plotted_sizes.push_back(double(size));
    plotted_top1.push_back(100 * accuracy.top1);
  }
  csv.close();
  std::printf("\ncsv: %s\n", csv_path.c_str());
  plot_accuracy(plot_path, pe, plotted_sizes, plotted_top1);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "eval_vit: %s\n", e.what());
  return 1;
}
