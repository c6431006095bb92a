// Line plots written as SVG by the project itself, so that evaluation apps (eval_lm, eval_vit, ...)
// produce their figures with no plotting package installed: axes with ticks and labels (linear, or
// logarithmic for evaluation lengths), one polyline with markers per series, a legend and a title.
// Series take ten colours in turn; past ten, the next ten are dashed and the ten after dotted, so
// that up to thirty series stay apart.
// Points with a non-finite coordinate (or a non-positive one on a log axis) are left out and break
// their line, so a diverged run shows as a gap rather than spoiling the axis range.
#pragma once

#include <string>
#include <vector>

namespace apps {

enum class Scale { linear, log2, log10 };

struct Axis {
  std::string label;
  Scale scale = Scale::linear;
};

struct Series {
  std::string name;       // legend entry
  std::vector<double> x;  // (N)
  std::vector<double> y;  // (N), the same length as x
};

struct LinePlot {
  std::string title;
  Axis x, y;
  std::vector<Series> series;
  int width = 760, height = 440;  // pixels, legend included
  bool markers = true;            // a circle on every point (off for curves of many points)
};

// The rectangle (pixels, y down) that the axes span; the data range maps onto it exactly.
struct Frame {
  double left, top, width, height;
};
Frame plot_frame(const LinePlot& plot);

// An axis' visible range (in data units) and its tick positions, both computed from the finite
// points of every series: linear axes extend to multiples of a 1-2-5 step, log axes to powers of
// their base (with intermediate 2 and 5 ticks when a log10 axis spans two decades or less), or,
// for data within one power of the base, to the linear axis' range and ticks.
struct AxisLayout {
  double min, max;
  std::vector<double> ticks;
};
AxisLayout x_layout(const LinePlot& plot);
AxisLayout y_layout(const LinePlot& plot);

// The SVG document of `plot`. Throws when a series' x and y differ in length.
std::string render_svg(const LinePlot& plot);
// render_svg written to `path` atomically (a temporary file renamed over it).
void write_svg(const LinePlot& plot, const std::string& path);

// `text` with XML's special characters (& < > " ') replaced by entities.
std::string escape_xml(const std::string& text);

}  // namespace apps
