#include "apps/qa_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "engine/error.h"

namespace qa {

namespace {

std::string escape(const std::string& text) {
  std::string out;
  for (const char c : text) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else if (c == '"') out += "&quot;";
    else out += c;
  }
  return out;
}

std::string number(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", v);
  return text;
}

}  // namespace

void write_line_plot_svg(const std::string& path, const std::string& title, const std::string& x_label,
                         const std::string& y_label, const std::vector<PlotSeries>& series, bool log2_x,
                         double y_min, double y_max) {
  ENGINE_CHECK(y_max > y_min, "write_line_plot_svg: empty y range [", y_min, ", ", y_max, "]");
  std::set<double> xs;
  for (const PlotSeries& s : series)
    for (const auto& [x, y] : s.points) {
      ENGINE_CHECK(!log2_x || x > 0, "write_line_plot_svg: x = ", x, " on a log scale (series ", s.name, ")");
      xs.insert(x);
    }
  ENGINE_CHECK(!xs.empty(), "write_line_plot_svg: no points to plot");
  const double width = 720, height = 440, left = 70, right = 220, top = 40, bottom = 60;
  const auto tx = [&](double x) { return log2_x ? std::log2(x) : x; };
  const double x0 = tx(*xs.begin()), x1 = xs.size() > 1 ? tx(*xs.rbegin()) : x0 + 1;
  const auto px = [&](double x) { return left + (tx(x) - x0) / (x1 - x0) * (width - left - right); };
  const auto py = [&](double y) { return height - bottom - (y - y_min) / (y_max - y_min) * (height - top - bottom); };
  static const char* colors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                 "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
      << "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<text x=\"" << width / 2 << "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">" << escape(title)
      << "</text>\n";
  for (int i = 0; i <= 4; ++i) {  // horizontal grid with y ticks
    const double y = y_min + (y_max - y_min) * i / 4;
    svg << "<line x1=\"" << left << "\" y1=\"" << py(y) << "\" x2=\"" << width - right << "\" y2=\"" << py(y)
        << "\" stroke=\"#ddd\"/>\n<text x=\"" << left - 6 << "\" y=\"" << py(y) + 4 << "\" text-anchor=\"end\">"
        << number(y) << "</text>\n";
  }
  for (const double x : xs)
    svg << "<text x=\"" << px(x) << "\" y=\"" << height - bottom + 18 << "\" text-anchor=\"middle\">" << number(x)
        << "</text>\n";
  svg << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << width - left - right << "\" height=\""
      << height - top - bottom << "\" fill=\"none\" stroke=\"black\"/>\n"
      << "<text x=\"" << (left + width - right) / 2 << "\" y=\"" << height - 18 << "\" text-anchor=\"middle\">"
      << escape(x_label) << "</text>\n<text transform=\"translate(18," << (top + height - bottom) / 2
      << ") rotate(-90)\" text-anchor=\"middle\">" << escape(y_label) << "</text>\n";
  for (size_t i = 0; i < series.size(); ++i) {
    const std::string color = colors[i % std::size(colors)];
    svg << "<polyline fill=\"none\" stroke=\"" << color << "\" stroke-width=\"2\" points=\"";
    for (const auto& [x, y] : series[i].points) svg << px(x) << "," << py(y) << " ";
    svg << "\"/>\n";
    for (const auto& [x, y] : series[i].points)
      svg << "<circle cx=\"" << px(x) << "\" cy=\"" << py(y) << "\" r=\"3\" fill=\"" << color << "\"/>\n";
    const double ly = top + 10 + 18 * double(i);
    svg << "<line x1=\"" << width - right + 12 << "\" y1=\"" << ly << "\" x2=\"" << width - right + 32 << "\" y2=\""
        << ly << "\" stroke=\"" << color << "\" stroke-width=\"2\"/>\n<text x=\"" << width - right + 38 << "\" y=\""
        << ly + 4 << "\">" << escape(series[i].name) << "</text>\n";
  }
  svg << "</svg>\n";
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    ENGINE_CHECK(out, "write_line_plot_svg: cannot write ", tmp);
    out << svg.str();
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace qa
