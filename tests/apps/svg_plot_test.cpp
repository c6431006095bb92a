// The SVG line-plot writer (apps/svg_plot): the output is well-formed XML (checked by a small
// strict parser below, not by string matching), coordinates land where the axis ranges say, text is
// escaped, non-finite points break lines without touching the axes, and log axes space powers evenly.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

#include "apps/svg_plot.h"

namespace {

struct Element {
  std::string name;
  std::map<std::string, std::string> attributes;
  std::string text;  // character data directly inside, entities decoded
};

// Decodes the five predefined entities; throws on a bare '&' or an unknown entity.
std::string decode(const std::string& raw) {
  static const std::map<std::string, char> entities = {
      {"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}};
  std::string out;
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '<') throw std::runtime_error("raw '<' in text");
    if (raw[i] != '&') {
      out += raw[i];
      continue;
    }
    const size_t end = raw.find(';', i);
    if (end == std::string::npos) throw std::runtime_error("unterminated entity");
    auto it = entities.find(raw.substr(i + 1, end - i - 1));
    if (it == entities.end()) throw std::runtime_error("unknown entity " + raw.substr(i, end - i + 1));
    out += it->second;
    i = end;
  }
  return out;
}

// A strict parser for the subset of XML the writer emits (declaration, elements, quoted
// attributes, text): every element in document order; throws on anything malformed, including a
// mismatched end tag, a duplicate attribute or text outside the root.
std::vector<Element> parse_xml(const std::string& doc) {
  std::vector<Element> elements;
  std::vector<size_t> open;  // indices into elements
  size_t i = 0;
  bool root_closed = false;
  if (doc.rfind("<?xml", 0) == 0) i = doc.find("?>") + 2;
  while (i < doc.size()) {
    if (doc[i] != '<') {
      const size_t end = doc.find('<', i);
      const std::string text = doc.substr(i, end == std::string::npos ? std::string::npos : end - i);
      if (open.empty()) {
        if (text.find_first_not_of(" \n") != std::string::npos) throw std::runtime_error("text outside the root");
      } else {
        elements[open.back()].text += decode(text);
      }
      if (end == std::string::npos) break;
      i = end;
      continue;
    }
    const size_t close = doc.find('>', i);
    if (close == std::string::npos) throw std::runtime_error("unterminated tag");
    std::string tag = doc.substr(i + 1, close - i - 1);
    i = close + 1;
    if (tag[0] == '/') {
      if (open.empty() || elements[open.back()].name != tag.substr(1)) throw std::runtime_error("mismatched </" + tag);
      open.pop_back();
      root_closed = open.empty();
      continue;
    }
    if (root_closed || (open.empty() && !elements.empty())) throw std::runtime_error("second root element");
    const bool self_closing = tag.back() == '/';
    if (self_closing) tag.pop_back();
    Element e;
    size_t p = tag.find_first_of(" \n");
    e.name = tag.substr(0, p);
    while (p != std::string::npos && (p = tag.find_first_not_of(" \n", p)) != std::string::npos) {
      const size_t eq = tag.find('=', p);
      if (eq == std::string::npos || eq + 1 >= tag.size() || tag[eq + 1] != '"')
        throw std::runtime_error("bad attribute in <" + tag + ">");
      const size_t end = tag.find('"', eq + 2);
      if (end == std::string::npos) throw std::runtime_error("unterminated attribute value");
      const std::string key = tag.substr(p, eq - p);
      if (!e.attributes.emplace(key, decode(tag.substr(eq + 2, end - eq - 2))).second)
        throw std::runtime_error("duplicate attribute " + key);
      p = end + 1;
    }
    elements.push_back(e);
    if (!self_closing) open.push_back(elements.size() - 1);
    else root_closed = open.empty();
  }
  if (!open.empty()) throw std::runtime_error("unclosed <" + elements[open.back()].name + ">");
  return elements;
}

std::vector<Element> named(const std::vector<Element>& elements, const std::string& name) {
  std::vector<Element> out;
  for (const Element& e : elements)
    if (e.name == name) out.push_back(e);
  return out;
}

std::vector<std::pair<double, double>> points(const Element& polyline) {
  std::vector<std::pair<double, double>> out;
  std::istringstream in(polyline.attributes.at("points"));
  double x, y;
  char comma;
  while (in >> x >> comma >> y) out.emplace_back(x, y);
  return out;
}

apps::LinePlot two_series() {
  apps::LinePlot p;
  p.title = "perplexity";
  p.x = {"length", apps::Scale::linear};
  p.y = {"ppl", apps::Scale::linear};
  p.series = {{"a", {0, 5, 10}, {0, 5, 10}}, {"b", {0, 10}, {10, 0}}};
  return p;
}

}  // namespace

TEST_CASE("svg plot: well-formed, one polyline and marker per point per series, legend and labels") {
  const apps::LinePlot p = two_series();
  const std::vector<Element> doc = parse_xml(apps::render_svg(p));
  REQUIRE(doc.front().name == "svg");
  CHECK(doc.front().attributes.at("xmlns") == "http://www.w3.org/2000/svg");
  CHECK(named(doc, "polyline").size() == 2);
  CHECK(named(doc, "circle").size() == 3 + 2 + 2);  // data markers, then one per legend entry
  std::vector<std::string> texts;
  for (const Element& t : named(doc, "text")) texts.push_back(t.text);
  for (const std::string expected : {"perplexity", "length", "ppl", "a", "b", "0", "10"})
    CHECK(std::find(texts.begin(), texts.end(), expected) != texts.end());
}

TEST_CASE("svg plot: data coordinates map onto the frame") {
  const apps::LinePlot p = two_series();
  const apps::AxisLayout x = apps::x_layout(p), y = apps::y_layout(p);
  CHECK(x.min == 0);
  CHECK(x.max == 10);
  CHECK(x.ticks == std::vector<double>{0, 2, 4, 6, 8, 10});
  CHECK(y.ticks == x.ticks);
  const apps::Frame f = apps::plot_frame(p);
  const std::vector<Element> lines = named(parse_xml(apps::render_svg(p)), "polyline");
  const auto a = points(lines[0]);
  REQUIRE(a.size() == 3);
  // (0,0) bottom left, (5,5) centre, (10,10) top right; the writer rounds to 0.01 px.
  const std::vector<std::pair<double, double>> expected = {
      {f.left, f.top + f.height}, {f.left + f.width / 2, f.top + f.height / 2}, {f.left + f.width, f.top}};
  for (size_t i = 0; i < 3; ++i) {
    CHECK(std::abs(a[i].first - expected[i].first) <= 0.005);
    CHECK(std::abs(a[i].second - expected[i].second) <= 0.005);
  }
  // A range that is not a multiple of the step extends to one: 0.3..2.7 with step 0.5.
  apps::LinePlot q = p;
  q.series = {{"c", {0.3, 2.7}, {1, 2}}};
  const apps::AxisLayout qx = apps::x_layout(q);
  CHECK(qx.min == doctest::Approx(0.0));
  CHECK(qx.max == doctest::Approx(3.0));
  CHECK(qx.ticks.size() == 7);
  // A tiny range far from zero (tick indices beyond 2^53) still ends, with a few ticks.
  q.series = {{"far", {1e15, 1e15 + 0.1}, {1, 2}}};
  CHECK(apps::x_layout(q).ticks.size() <= 21);
  CHECK_NOTHROW(parse_xml(apps::render_svg(q)));
}

TEST_CASE("svg plot: text is escaped") {
  CHECK(apps::escape_xml("a<b & \"c\" 'd'>") == "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;");
  apps::LinePlot p = two_series();
  p.title = "<script>&\"'";
  p.x.label = "x & y";
  p.series[0].name = "run </text>";
  const std::string svg = apps::render_svg(p);
  CHECK(svg.find("<script>") == std::string::npos);
  std::vector<std::string> texts;
  for (const Element& t : named(parse_xml(svg), "text")) texts.push_back(t.text);
  for (const std::string expected : {"<script>&\"'", "x & y", "run </text>"})
    CHECK(std::find(texts.begin(), texts.end(), expected) != texts.end());
}

TEST_CASE("svg plot: NaN and infinite points break the line and leave the axis range alone") {
  apps::LinePlot p;
  p.series = {{"diverged", {1, 2, 3, 4, 5, 6}, {1, NAN, 3, INFINITY, 5, 6}}};
  const apps::AxisLayout y = apps::y_layout(p);
  CHECK(y.min == 1);
  CHECK(y.max == 6);
  const std::vector<Element> doc = parse_xml(apps::render_svg(p));
  const std::vector<Element> lines = named(doc, "polyline");
  REQUIRE(lines.size() == 1);  // segments {1}, {3}, {5, 6}: only the last has two points
  CHECK(points(lines[0]).size() == 2);
  CHECK(named(doc, "circle").size() == 4 + 1);
  // Nothing drawable at all: a unit range and no lines, still a valid document.
  p.series = {{"empty", {NAN}, {INFINITY}}};
  const std::vector<Element> empty = parse_xml(apps::render_svg(p));
  CHECK(named(empty, "polyline").empty());
  CHECK(apps::y_layout(p).max == 1);
  const std::string svg = apps::render_svg(p);
  CHECK(svg.find("nan") == std::string::npos);
  CHECK(svg.find("inf") == std::string::npos);
}

TEST_CASE("svg plot: log axes space powers evenly and drop non-positive values") {
  apps::LinePlot p;
  p.x = {"length", apps::Scale::log2};
  p.y = {"ppl", apps::Scale::log10};
  p.series = {{"ape", {0, 128, 256, 512, 1024, 2048}, {1, 20, 40, 300, 1000, 3000}}};
  const apps::AxisLayout x = apps::x_layout(p), y = apps::y_layout(p);
  CHECK(x.ticks == std::vector<double>{128, 256, 512, 1024, 2048});
  CHECK(y.min == 10);  // the point at x = 0 (and its y of 1) is not drawn
  CHECK(y.max == 10000);
  CHECK(y.ticks == std::vector<double>{10, 100, 1000, 10000});
  const std::vector<Element> lines = named(parse_xml(apps::render_svg(p)), "polyline");
  REQUIRE(lines.size() == 1);
  const auto a = points(lines[0]);
  REQUIRE(a.size() == 5);
  const apps::Frame f = apps::plot_frame(p);
  for (size_t i = 0; i < 5; ++i) CHECK(std::abs(a[i].first - (f.left + f.width * double(i) / 4)) <= 0.005);
  // y = 1000 is two thirds of the way up from 10 to 10^4 (decades 1..4).
  CHECK(std::abs(a[3].second - (f.top + f.height / 3)) <= 0.005);
  // A log10 axis within two decades gets 2x and 5x ticks.
  p.series = {{"narrow", {128, 256}, {12, 80}}};
  CHECK(apps::y_layout(p).ticks == std::vector<double>{10, 20, 50, 100});
  // Within one decade: the linear layout's range and ticks, placed on the log scale.
  p.series = {{"flat", {128, 256, 512}, {491, 500, 506}}};
  const apps::AxisLayout flat = apps::y_layout(p);
  CHECK(flat.min == 490);
  CHECK(flat.max == 510);
  CHECK(flat.ticks.size() == 5);
  const auto f500 = points(named(parse_xml(apps::render_svg(p)), "polyline")[0])[1];
  const double up = (std::log10(500.0) - std::log10(490.0)) / (std::log10(510.0) - std::log10(490.0));
  CHECK(std::abs(f500.second - (f.top + f.height * (1 - up))) <= 0.005);
}

TEST_CASE("svg plot: mismatched series lengths are refused; write_svg writes the rendered document") {
  apps::LinePlot p = two_series();
  p.series[1].y.pop_back();
  CHECK_THROWS_WITH(apps::render_svg(p), doctest::Contains("series 'b' has 2 x values but 1 y values"));
  const std::string path = (std::filesystem::temp_directory_path() / "svg_plot_test.svg").string();
  const apps::LinePlot good = two_series();
  apps::write_svg(good, path);
  std::ifstream in(path);
  std::stringstream read;
  read << in.rdbuf();
  CHECK(read.str() == apps::render_svg(good));
  std::filesystem::remove(path);
  CHECK_THROWS_WITH(apps::write_svg(good, "/nonexistent-dir/plot.svg"), doctest::Contains("cannot write"));
}

TEST_CASE("svg plot: past ten series the lines are dashed, then dotted; markers can be left out") {
  apps::LinePlot p = two_series();
  p.series.clear();
  for (int k = 0; k < 21; ++k) {
    std::string name = std::to_string(k);  // not "s" + ...: GCC 12 misreports it as overlapping copies (-Wrestrict)
    p.series.push_back({name, {0, 1}, {double(k), double(k)}});
  }
  p.markers = false;
  const std::vector<Element> doc = parse_xml(apps::render_svg(p));
  const std::vector<Element> lines = named(doc, "polyline");
  REQUIRE(lines.size() == 21);
  CHECK(lines[0].attributes.count("stroke-dasharray") == 0);
  CHECK(lines[9].attributes.count("stroke-dasharray") == 0);
  CHECK(lines[10].attributes.at("stroke-dasharray") == "8,4");
  CHECK(lines[20].attributes.at("stroke-dasharray") == "2,3");
  CHECK(named(doc, "circle").size() == 21);  // the legend's only
  const std::vector<Element> legend = named(doc, "line");
  CHECK(std::count_if(legend.begin(), legend.end(),
                      [](const Element& e) { return e.attributes.count("stroke-dasharray") == 1; }) == 11);
}
