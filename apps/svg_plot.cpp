// SVG line plots (apps/svg_plot.h): axis layout on linear or log scales, ticks, polylines with
// markers, legend.
#include "apps/svg_plot.h"

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/error.h"

namespace apps {

namespace {

// Ten distinguishable colours (Tableau 10); series beyond ten reuse them.
constexpr const char* kColors[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                   "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};
constexpr double kCharWidth = 7.0;  // approximate advance of a 12 px sans-serif character

// The stroke pattern of series k: solid for the first ten colours, then dashed, then dotted.
std::string dash_attribute(size_t k) {
  static const char* const kDashes[] = {"", " stroke-dasharray=\"8,4\"", " stroke-dasharray=\"2,3\""};
  return kDashes[(k / std::size(kColors)) % std::size(kDashes)];
}

double base_of(Scale scale) { return scale == Scale::log2 ? 2.0 : 10.0; }

// Whether `v` can be drawn on an axis of this scale.
bool drawable(double v, Scale scale) { return std::isfinite(v) && (scale == Scale::linear || v > 0); }

// A value in the axis' drawing space: itself, or its logarithm.
double transform(double v, Scale scale) {
  switch (scale) {
    case Scale::log2: return std::log2(v);
    case Scale::log10: return std::log10(v);
    case Scale::linear: break;
  }
  return v;
}

bool point_drawn(const LinePlot& plot, const Series& s, size_t i) {
  return drawable(s.x[i], plot.x.scale) && drawable(s.y[i], plot.y.scale);
}

void check_series(const LinePlot& plot) {
  for (const Series& s : plot.series)
    ENGINE_CHECK(s.x.size() == s.y.size(), "svg plot '", plot.title, "': series '", s.name, "' has ", s.x.size(),
                 " x values but ", s.y.size(), " y values");
}

// Ticks of a linear axis over [lo, hi]: multiples of a 1-2-5 step giving about five intervals.
AxisLayout linear_layout(double lo, double hi) {
  if (lo == hi) {
    const double pad = lo == 0 ? 1.0 : std::abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const double raw = (hi - lo) / 5;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double fraction = raw / magnitude;
  const double step = magnitude * (fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10);
  // The 1e-9 slack keeps a bound that is already a multiple of the step from growing an interval.
  const double first = std::floor(lo / step + 1e-9), last = std::ceil(hi / step - 1e-9);
  AxisLayout layout{first * step, last * step, {}};
  // Counted by an integer: near 1e16 steps a double counter no longer moves by one. About five
  // intervals by construction; the cap only matters when rounding has ruined the arithmetic.
  const int64_t intervals = std::min<int64_t>(std::llround(last - first), 20);
  for (int64_t i = 0; i <= intervals; ++i) {
    const double k = first + double(i);
    layout.ticks.push_back(k == 0 ? 0.0 : k * step);
  }
  return layout;
}

// Ticks of a logarithmic axis over [lo, hi] (both > 0): powers of the base, thinned to at most
// twelve; a log10 axis spanning two decades or less also gets 2x and 5x ticks. Data within one
// power of the base (perplexities 490..506) would be a flat line in a whole decade: it gets the
// linear layout's range and ticks instead (still drawn on the log scale) when that stays positive.
AxisLayout log_layout(double lo, double hi, Scale scale) {
  const double base = base_of(scale);
  if (hi < lo * base) {
    AxisLayout linear = linear_layout(lo, hi);
    if (linear.min > 0) return linear;
  }
  double first = std::floor(transform(lo, scale) + 1e-9), last = std::ceil(transform(hi, scale) - 1e-9);
  if (first == last) {
    first -= 1;
    last += 1;
  }
  AxisLayout layout{std::pow(base, first), std::pow(base, last), {}};
  const double stride = std::ceil((last - first) / 12);
  for (double e = first; e <= last; e += stride) {
    layout.ticks.push_back(std::pow(base, e));
    if (scale == Scale::log10 && last - first <= 2 && e < last)
      for (double m : {2.0, 5.0}) layout.ticks.push_back(m * std::pow(base, e));
  }
  std::sort(layout.ticks.begin(), layout.ticks.end());
  return layout;
}

AxisLayout axis_layout(const LinePlot& plot, bool x_axis) {
  check_series(plot);
  const Scale scale = x_axis ? plot.x.scale : plot.y.scale;
  double lo = INFINITY, hi = -INFINITY;
  for (const Series& s : plot.series)
    for (size_t i = 0; i < s.x.size(); ++i)
      if (point_drawn(plot, s, i)) {
        lo = std::min(lo, x_axis ? s.x[i] : s.y[i]);
        hi = std::max(hi, x_axis ? s.x[i] : s.y[i]);
      }
  if (lo > hi) {  // nothing to draw: a unit range
    lo = scale == Scale::linear ? 0 : 1;
    hi = scale == Scale::linear ? 1 : base_of(scale);
  }
  return scale == Scale::linear ? linear_layout(lo, hi) : log_layout(lo, hi, scale);
}

std::string number(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f", v);
  return text;
}

std::string tick_label(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.6g", v);
  return text;
}

double legend_width(const LinePlot& plot) {
  size_t longest = 0;
  for (const Series& s : plot.series) longest = std::max(longest, s.name.size());
  if (plot.series.empty()) return 20;
  return std::min(double(plot.width) / 2, 60 + kCharWidth * double(longest));
}

}  // namespace

std::string escape_xml(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

Frame plot_frame(const LinePlot& plot) {
  const double left = 72, top = 40, bottom = 56;
  return {left, top, std::max(1.0, plot.width - left - legend_width(plot)), std::max(1.0, plot.height - top - bottom)};
}

AxisLayout x_layout(const LinePlot& plot) { return axis_layout(plot, true); }
AxisLayout y_layout(const LinePlot& plot) { return axis_layout(plot, false); }

std::string render_svg(const LinePlot& plot) {
  const Frame f = plot_frame(plot);
  const AxisLayout xa = x_layout(plot), ya = y_layout(plot);
  const double x0 = transform(xa.min, plot.x.scale), x1 = transform(xa.max, plot.x.scale);
  const double y0 = transform(ya.min, plot.y.scale), y1 = transform(ya.max, plot.y.scale);
  auto px = [&](double x) { return f.left + (transform(x, plot.x.scale) - x0) / (x1 - x0) * f.width; };
  auto py = [&](double y) { return f.top + f.height - (transform(y, plot.y.scale) - y0) / (y1 - y0) * f.height; };
  const double right = f.left + f.width, bottom = f.top + f.height;

  std::ostringstream svg;
  svg << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << plot.width << "\" height=\"" << plot.height
      << "\" viewBox=\"0 0 " << plot.width << " " << plot.height
      << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<text x=\"" << number(f.left + f.width / 2) << "\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">"
      << escape_xml(plot.title) << "</text>\n";

  // Grid lines and tick labels, then the frame over them.
  svg << "<g stroke=\"#dddddd\" stroke-width=\"1\">\n";
  for (double t : xa.ticks)
    svg << "<line x1=\"" << number(px(t)) << "\" y1=\"" << number(f.top) << "\" x2=\"" << number(px(t)) << "\" y2=\""
        << number(bottom) << "\"/>\n";
  for (double t : ya.ticks)
    svg << "<line x1=\"" << number(f.left) << "\" y1=\"" << number(py(t)) << "\" x2=\"" << number(right) << "\" y2=\""
        << number(py(t)) << "\"/>\n";
  svg << "</g>\n<g fill=\"#333333\">\n";
  for (double t : xa.ticks)
    svg << "<text x=\"" << number(px(t)) << "\" y=\"" << number(bottom + 16) << "\" text-anchor=\"middle\">"
        << escape_xml(tick_label(t)) << "</text>\n";
  for (double t : ya.ticks)
    svg << "<text x=\"" << number(f.left - 6) << "\" y=\"" << number(py(t) + 4) << "\" text-anchor=\"end\">"
        << escape_xml(tick_label(t)) << "</text>\n";
  svg << "</g>\n<rect x=\"" << number(f.left) << "\" y=\"" << number(f.top) << "\" width=\"" << number(f.width)
      << "\" height=\"" << number(f.height) << "\" fill=\"none\" stroke=\"black\"/>\n";
  svg << "<text x=\"" << number(f.left + f.width / 2) << "\" y=\"" << number(bottom + 40)
      << "\" text-anchor=\"middle\">" << escape_xml(plot.x.label) << "</text>\n";
  svg << "<text transform=\"translate(18," << number(f.top + f.height / 2)
      << ") rotate(-90)\" text-anchor=\"middle\">" << escape_xml(plot.y.label) << "</text>\n";

  // Each series: one polyline per run of drawable points, a marker on every drawable point.
  for (size_t k = 0; k < plot.series.size(); ++k) {
    const Series& s = plot.series[k];
    const char* color = kColors[k % std::size(kColors)];
    svg << "<g stroke=\"" << color << "\" fill=\"" << color << "\">\n";
    std::vector<std::string> segment;
    auto flush = [&] {
      if (segment.size() >= 2) {
        svg << "<polyline fill=\"none\" stroke-width=\"2\"" << dash_attribute(k) << " points=\"";
        for (size_t i = 0; i < segment.size(); ++i) svg << (i ? " " : "") << segment[i];
        svg << "\"/>\n";
      }
      segment.clear();
    };
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!point_drawn(plot, s, i)) {
        flush();
        continue;
      }
      segment.push_back(number(px(s.x[i])) + "," + number(py(s.y[i])));
    }
    flush();
    for (size_t i = 0; i < s.x.size() && plot.markers; ++i)
      if (point_drawn(plot, s, i))
        svg << "<circle cx=\"" << number(px(s.x[i])) << "\" cy=\"" << number(py(s.y[i])) << "\" r=\"3\"/>\n";
    svg << "</g>\n";
  }

  // Legend, right of the frame: a line sample with its marker, then the name.
  for (size_t k = 0; k < plot.series.size(); ++k) {
    const char* color = kColors[k % std::size(kColors)];
    const double y = f.top + 10 + 20 * double(k), x = right + 14;
    svg << "<g stroke=\"" << color << "\" fill=\"" << color << "\"><line x1=\"" << number(x) << "\" y1=\""
        << number(y) << "\" x2=\"" << number(x + 24) << "\" y2=\"" << number(y)
        << "\" stroke-width=\"2\"" << dash_attribute(k) << "/><circle cx=\"" << number(x + 12) << "\" cy=\""
        << number(y) << "\" r=\"3\"/></g>\n<text x=\"" << number(x + 30) << "\" y=\"" << number(y + 4) << "\">"
        << escape_xml(plot.series[k].name) << "</text>\n";
  }
  svg << "</svg>\n";
  return svg.str();
}

void write_svg(const LinePlot& plot, const std::string& path) {
  const std::string svg = render_svg(plot);
  const std::string temp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(temp, std::ios::binary);
    ENGINE_CHECK(out, "svg plot: cannot write ", temp);
    out << svg;
    out.close();
    ENGINE_CHECK(out, "svg plot: writing ", temp, " failed");
  }
  std::error_code error;
  std::filesystem::rename(temp, path, error);
  if (error) {
    std::filesystem::remove(temp);
    ENGINE_CHECK(false, "svg plot: cannot rename ", temp, " to ", path, ": ", error.message());
  }
}

}  // namespace apps
