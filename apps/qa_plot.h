// A line plot as a standalone SVG file (no plotting package needed): one polyline with markers per
// series, linear axes with ticks at the data's x values, a legend. eval_qa draws accuracy against
// context length with it. To be replaced by the shared SVG writer of eval_lm when that lands.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace qa {

struct PlotSeries {
  std::string name;
  std::vector<std::pair<double, double>> points;  // (x, y), drawn in this order
};

// Writes the plot to `path` atomically. x is drawn on a log2 scale when `log2_x` (context lengths
// that double); y spans [y_min, y_max].
void write_line_plot_svg(const std::string& path, const std::string& title, const std::string& x_label,
                         const std::string& y_label, const std::vector<PlotSeries>& series, bool log2_x,
                         double y_min, double y_max);

}  // namespace qa
