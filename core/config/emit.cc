// Config → YAML (to_yaml): every key of the schema, in schema order, with resolved values.
//
// Written by hand rather than with YAML::Emitter so that the text is exact where it must be:
// doubles in the shortest form that reads back to the same bits, and strings quoted whenever
// a plain scalar could read back as something else (`null`, `~`, `: `, leading spaces).
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "core/config/config.h"
#include "core/config/schema.h"
#include "core/text_escape.h"

namespace tessel {

namespace {

std::string format_double(double value) {
  if (std::isnan(value)) return ".nan";
  if (std::isinf(value)) return value > 0 ? ".inf" : "-.inf";
  char text[40];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(text, sizeof(text), "%.*g", precision, value);
    if (std::strtod(text, nullptr) == value) break;  // %.17g always reads back exactly
  }
  return text;
}

// Plain scalars only for simple words (paths and names included); anything else double-quoted.
bool is_plain_safe(const std::string& text) {
  if (text.empty() || text == "null" || text == "Null" || text == "NULL" || text == "~") {
    return false;
  }
  const unsigned char first = static_cast<unsigned char>(text[0]);
  if (!(std::isalnum(first) || first == '_' || first == '/' || first == '.')) return false;
  for (char ch : text) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (!(std::isalnum(c) || c == '_' || c == '/' || c == '.' || c == '-' || c == '+')) {
      return false;
    }
  }
  return true;
}

std::string quote(const std::string& text) { return is_plain_safe(text) ? text : quote_escaped(text); }

class YamlWriter {
 public:
  template <typename Body>
  void section(const char* name, Body&& body) {
    out_ << name << ":\n";
    body();
  }
  template <typename Body>
  void subsection(const char* name, Body&& body) {
    out_ << indent_ << name << ":\n";
    indent_ += "  ";
    body();
    indent_.resize(indent_.size() - 2);
  }
  void field(const char* name, const std::string& value) { line(name, quote(value)); }
  void field(const char* name, int64_t value) { line(name, std::to_string(value)); }
  void field(const char* name, uint64_t value) { line(name, std::to_string(value)); }
  void field(const char* name, int value) { line(name, std::to_string(value)); }
  void field(const char* name, double value) { line(name, format_double(value)); }
  void field(const char* name, bool value) { line(name, value ? "true" : "false"); }
  template <typename E>
  void choice(const char* name, E value) {
    line(name, name_of(value));
  }
  void preset(const char* name, const ModelConfig& model) { choice(name, model.arch); }
  void dp(const char* name, int64_t value) { line(name, value == 0 ? "auto" : std::to_string(value)); }
  void loss_scale(const char* name, double value) { line(name, value == 0 ? "dynamic" : format_double(value)); }
  void layer_split(const char* name, const LayerSplit& split) {
    if (split.counts.empty()) {
      choice(name, split.kind);
      return;
    }
    counts(name, split.counts);
  }
  void counts(const char* name, const std::vector<int64_t>& values) {
    std::string list;
    for (int64_t n : values) list += (list.empty() ? "" : ", ") + std::to_string(n);
    line(name, "[" + list + "]");
  }
  void resume(const char* name, const CheckpointConfig& checkpoint) {
    line(name, checkpoint.resume == ResumeMode::kPath ? quote(checkpoint.resume_path) : name_of(checkpoint.resume));
  }
  void sources(const char* name, const std::vector<DataSource>& sources) {
    if (sources.empty()) {
      line(name, "[]");
      return;
    }
    out_ << indent_ << name << ":\n";
    for (const DataSource& source : sources) {
      out_ << indent_ << "  - {path: " << quote(source.path);
      if (source.weight) out_ << ", weight: " << format_double(*source.weight);
      out_ << "}\n";
    }
  }

  std::string text() const { return out_.str(); }

 private:
  void line(const char* name, const std::string& value) { out_ << indent_ << name << ": " << value << "\n"; }

  std::ostringstream out_;
  std::string indent_ = "  ";
};

}  // namespace

std::string to_yaml(const Config& config) {
  YamlWriter writer;
  visit_config(writer, config);
  return writer.text();
}

}  // namespace tessel
