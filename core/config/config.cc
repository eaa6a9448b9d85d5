// YAML text → Config: syntax check, `--set` overrides on the YAML tree, then typed parsing driven
// by the schema (config_schema.h). Emission lives in config_emit.cc, checks of combinations in
// config_validate.cc.
#include "core/config/config.h"

#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <utility>

#include "core/config/preset.h"
#include "core/config/schema.h"
#include "core/config/suggest.h"
#include "core/error.h"

namespace tessel {

namespace {

// Collects the schema's sections and keys; see schema_keys().
class KeyCollector {
 public:
  explicit KeyCollector(SchemaKeys& out) : out_(out) {}

  template <typename Body>
  void section(const char* name, Body&& body) {
    section_ = name;
    out_.sections.push_back(name);
    body();
  }
  template <typename Body>
  void subsection(const char* name, Body&& body) {
    add(name);
    const std::string parent = section_;
    section_ = parent + "." + name;
    out_.keys[section_];
    body();
    section_ = parent;
  }
  template <typename T>
  void field(const char* name, const T&) {
    add(name);
  }
  template <typename E>
  void choice(const char* name, const E&) {
    add(name);
  }
  void preset(const char* name, const ModelConfig&) { add(name); }
  void dp(const char* name, const int64_t&) { add(name); }
  void loss_scale(const char* name, const double&) { add(name); }
  void resume(const char* name, const CheckpointConfig&) { add(name); }
  void layer_split(const char* name, const LayerSplit&) { add(name); }
  void counts(const char* name, const std::vector<int64_t>&) { add(name); }
  void sources(const char* name, const std::vector<DataSource>&) { add(name); }

 private:
  void add(const char* name) { out_.keys[section_].push_back(name); }

  SchemaKeys& out_;
  std::string section_;
};

// "cfg.yaml:3:7" for a node's mark (yaml-cpp counts from 0, people from 1).
std::string mark_text(const std::string& source, const YAML::Mark& mark) {
  if (mark.is_null()) return source;
  return source + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null: return "no value";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a map";
    case YAML::NodeType::Scalar: return "'" + node.Scalar() + "'";
    default: return "nothing";
  }
}

const char* kind_name(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a map";
    case YAML::NodeType::Null: return "empty";
    default: return "a scalar";
  }
}

std::string trim(const std::string& text) {
  const char* blanks = " \t\r\n";
  const size_t begin = text.find_first_not_of(blanks);
  if (begin == std::string::npos) return "";
  return text.substr(begin, text.find_last_not_of(blanks) - begin + 1);
}

// Strict scalar conversions: the whole text must be the value (so `12abc` and `1.5` are not
// integers); nullopt-style `false` return on mismatch, the caller words the error.
bool to_int64(const std::string& text, int64_t& out) {
  if (text.empty() || !(std::isdigit(static_cast<unsigned char>(text[0])) || text[0] == '-' || text[0] == '+')) {
    return false;
  }
  char* end = nullptr;
  errno = 0;
  const long long value = std::strtoll(text.c_str(), &end, 10);
  if (errno != 0 || end != text.c_str() + text.size()) return false;
  out = value;
  return true;
}

bool to_uint64(const std::string& text, uint64_t& out) {
  if (text.empty() || !std::isdigit(static_cast<unsigned char>(text[0]))) return false;
  char* end = nullptr;
  errno = 0;
  const unsigned long long value = std::strtoull(text.c_str(), &end, 10);
  if (errno != 0 || end != text.c_str() + text.size()) return false;
  out = value;
  return true;
}

bool to_double(const std::string& text, double& out) {
  // YAML's spellings of the special values; strtod's "inf"/"nan" words are not YAML numbers.
  if (text == ".inf" || text == ".Inf" || text == ".INF" || text == "+.inf" || text == "+.Inf" || text == "+.INF") {
    out = std::numeric_limits<double>::infinity();
    return true;
  }
  if (text == "-.inf" || text == "-.Inf" || text == "-.INF") {
    out = -std::numeric_limits<double>::infinity();
    return true;
  }
  if (text == ".nan" || text == ".NaN" || text == ".NAN") {
    out = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  if (text.empty()) return false;
  const char first = text[0];
  if (!(std::isdigit(static_cast<unsigned char>(first)) || first == '-' || first == '+' || first == '.')) {
    return false;
  }
  char* end = nullptr;
  errno = 0;
  const double value = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || (errno == ERANGE && std::isinf(value))) return false;
  if (std::isnan(value) || std::isinf(value)) return false;  // "-nan", "+inf" spelled C-style
  out = value;
  return true;
}

bool to_bool(const std::string& text, bool& out) {
  std::string lower;
  for (char ch : text) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (lower == "true" || lower == "yes" || lower == "on") {
    out = true;
    return true;
  }
  if (lower == "false" || lower == "no" || lower == "off") {
    out = false;
    return true;
  }
  return false;
}

// Collects a message with operator<< and throws it as tessel::Error when the statement ends,
// like TESSEL_FAIL() but starting with a location that the caller computes. Lives only as a
// temporary (C++17 guarantees the return by value below is not a copy).
class ConfigFailure {
 public:
  explicit ConfigFailure(const std::string& prefix) { text_ << prefix; }
  ConfigFailure(const ConfigFailure&) = delete;
  ConfigFailure& operator=(const ConfigFailure&) = delete;

  template <typename T>
  ConfigFailure& operator<<(const T& value) {
    text_ << value;
    return *this;
  }

  [[noreturn]] ~ConfigFailure() noexcept(false) { TESSEL_FAIL() << text_.str(); }

 private:
  std::ostringstream text_;
};

// A map's entries in file order, key node with value node.
struct Entry {
  std::string key;
  YAML::Node key_node;
  YAML::Node value;
};

// Typed parsing of a YAML tree, one schema visitor pass. Every error names where the value came
// from: FILE:LINE:COL, or the `--set` override that put it there.
class Parser {
 public:
  Parser(const std::string& source, const SchemaKeys& schema, const std::map<std::string, std::string>& overridden)
      : source_(source), schema_(schema), overridden_(overridden) {}

  void parse(const YAML::Node& root, Config& config) {
    root_ = entries_of(root, "");
    check_keys("", root_);
    visit_config(*this, config);
  }

  const std::map<std::string, std::string>& origins() const { return origins_; }

  // --- the schema visitor ---

  template <typename Body>
  void section(const char* name, Body&& body) {
    section_ = name;
    entries_.clear();
    if (const Entry* entry = find(root_, name)) {
      const YAML::Node& node = entry->value;
      if (node.IsMap()) {
        entries_ = entries_of(node, name);
        check_keys(name, entries_);
      } else if (!node.IsNull()) {
        fail(name, *entry) << name << ": expected a map of keys (" << join(schema_.keys.at(name)) << "), found "
                           << describe(node);
      }
    }
    body();
  }
  // A map inside the section (model.moe): its keys are checked and parsed like a section's.
  template <typename Body>
  void subsection(const char* name, Body&& body) {
    const std::string parent = section_;
    const std::string key = dotted(name);
    std::vector<Entry> outer = entries_;
    entries_.clear();
    if (const Entry* entry = find(outer, name)) {
      const YAML::Node& node = entry->value;
      if (node.IsMap()) {
        entries_ = entries_of(node, key);
        check_keys(key, entries_);
        record(key, *entry);
      } else if (!node.IsNull()) {
        fail(key, *entry) << key << ": expected a map of keys (" << join(schema_.keys.at(key)) << "), found "
                          << describe(node);
      }
    }
    section_ = key;
    body();
    section_ = parent;
    entries_ = std::move(outer);
  }

  template <typename T>
  void field(const char* name, T& value) {
    if (const Entry* entry = lookup(name)) {
      value = convert(dotted(name), *entry, static_cast<T*>(nullptr));
    }
  }

  template <typename E>
  void choice(const char* name, E& value) {
    const Entry* entry = lookup(name);
    if (entry == nullptr) return;
    const std::string key = dotted(name);
    const std::string text = convert(key, *entry, static_cast<std::string*>(nullptr));
    if (!parse_name(text, &value)) fail(key, *entry) << invalid_choice_message(key, text, valid_names<E>());
  }

  void layer_split(const char* name, LayerSplit& split) {
    const Entry* entry = lookup(name);
    if (entry == nullptr) return;
    split.counts.clear();
    if (!entry->value.IsSequence()) {
      choice(name, split.kind);
      return;
    }
    const std::string key = dotted(name);
    split.kind = PipelineSplit::kEven;
    if (!positive_integers(entry->value, &split.counts)) {
      fail(key, *entry) << key << ": expected " << join(valid_names<PipelineSplit>(), ", ")
                        << ", or a list of each pipeline stage's layers (positive integers), found "
                        << describe(entry->value);
    }
    if (split.counts.empty()) fail(key, *entry) << key << ": an empty list; expected each pipeline stage's layers";
    record(key, *entry);
  }

  void counts(const char* name, std::vector<int64_t>& out) {
    const Entry* entry = lookup(name);
    if (entry == nullptr) return;
    const std::string key = dotted(name);
    if (!positive_integers(entry->value, &out)) {
      fail(key, *entry) << key << ": expected a list of positive integers, found " << describe(entry->value);
    }
    record(key, *entry);
  }

  // A YAML sequence of integers >= 1 into *out (false, out unspecified, for anything else).
  static bool positive_integers(const YAML::Node& node, std::vector<int64_t>* out) {
    out->clear();
    if (!node.IsSequence()) return false;
    for (const YAML::Node& item : node) {
      int64_t n = 0;
      if (!item.IsScalar() || !to_int64(item.Scalar(), n) || n < 1) return false;
      out->push_back(n);
    }
    return true;
  }

  void preset(const char* name, ModelConfig& model) {
    if (lookup(name) == nullptr) return;
    choice(name, model.arch);
    apply_arch_preset(model);
  }

  void dp(const char* name, int64_t& value) {
    const Entry* entry = lookup(name);
    if (entry == nullptr) return;
    const std::string key = dotted(name);
    int64_t number = 0;
    if (entry->value.IsScalar() && entry->value.Scalar() == "auto") {
      value = 0;
    } else if (entry->value.IsScalar() && to_int64(entry->value.Scalar(), number) && number >= 0) {
      value = number;
    } else {
      fail(key, *entry) << key << ": expected 'auto' or a positive integer, found " << describe(entry->value);
    }
    record(key, *entry);
  }

  void loss_scale(const char* name, double& value) {
    const Entry* entry = lookup(name);
    if (entry == nullptr) return;
    const std::string key = dotted(name);
    double number = 0;
    const bool is_scalar = entry->value.IsScalar();
    const std::string text = is_scalar ? entry->value.Scalar() : "";
    if (text == "dynamic") {
      value = 0.0;
    } else if (is_scalar && to_double(text, number) && number > 0 && std::isfinite(number)) {
      value = number;
    } else {
      fail(key, *entry) << key << ": expected 'dynamic' or a positive number, found " << describe(entry->value);
    }
    record(key, *entry);
  }

  void resume(const char* name, CheckpointConfig& checkpoint) {
    const Entry* entry = lookup(name);
    if (entry == nullptr) return;
    const std::string key = dotted(name);
    const std::string text = convert(key, *entry, static_cast<std::string*>(nullptr));
    if (text.empty()) {
      fail(key, *entry) << key << " must not be empty; valid values: auto, none, or the path of a checkpoint "
                        << "(a step_NNNNNNNN directory or a checkpoint root)";
    }
    checkpoint.resume_path.clear();
    if (!parse_name(text, &checkpoint.resume)) {
      checkpoint.resume = ResumeMode::kPath;
      checkpoint.resume_path = text;
    }
  }

  void sources(const char* name, std::vector<DataSource>& out) {
    const Entry* entry = lookup(name);
    if (entry == nullptr) return;
    const std::string key = dotted(name);
    const YAML::Node& node = entry->value;
    out.clear();
    if (node.IsScalar()) {
      out.push_back(DataSource{node.Scalar(), std::nullopt});
    } else if (node.IsMap()) {
      out.push_back(source_of(key, *entry));
    } else if (node.IsSequence()) {
      for (size_t i = 0; i < node.size(); ++i) {
        const Entry item{std::to_string(i), node[i], node[i]};
        const std::string item_key = key + "[" + std::to_string(i) + "]";
        if (item.value.IsScalar()) {
          out.push_back(DataSource{item.value.Scalar(), std::nullopt});
        } else if (item.value.IsMap()) {
          out.push_back(source_of(item_key, item));
        } else {
          fail(item_key, item) << item_key << ": expected a path or a {path, weight} map, found "
                               << describe(item.value);
        }
      }
    } else if (!node.IsNull()) {
      fail(key, *entry) << key << ": expected a path, a list of paths or a list of "
                        << "{path, weight} maps, found " << describe(node);
    }
    record(key, *entry);
  }

 private:
  std::string dotted(const char* name) const { return section_ + "." + name; }

  // Where a value came from: the override that set it (or set a section above it), else its
  // place in the file.
  std::string where(const std::string& key, const Entry& entry) const {
    for (std::string prefix = key;;) {
      auto it = overridden_.find(prefix);
      if (it != overridden_.end()) return "override '" + it->second + "'";
      const size_t cut = prefix.find_last_of(".[");
      if (cut == std::string::npos) break;
      prefix.resize(cut);
    }
    // An empty value's mark is wherever the parser went next; its key is the better place.
    const bool use_key = entry.value.IsNull() || entry.value.Mark().is_null();
    const YAML::Mark mark = use_key ? entry.key_node.Mark() : entry.value.Mark();
    return mark_text(source_, mark);
  }

  // Usage: fail(key, entry) << "message"; prefixes WHERE and throws at the end of the statement.
  ConfigFailure fail(const std::string& key, const Entry& entry) const {
    return ConfigFailure(where(key, entry) + ": ");
  }

  void record(const std::string& key, const Entry& entry) { origins_[key] = where(key, entry); }

  const Entry* lookup(const char* name) const { return find(entries_, name); }

  static const Entry* find(const std::vector<Entry>& entries, const std::string& key) {
    for (const Entry& entry : entries) {
      if (entry.key == key) return &entry;
    }
    return nullptr;
  }

  std::vector<Entry> entries_of(const YAML::Node& map, const std::string& section) {
    std::vector<Entry> entries;
    for (auto it = map.begin(); it != map.end(); ++it) {
      Entry entry{"", it->first, it->second};
      const std::string parent = section.empty() ? "" : section + ".";
      if (!entry.key_node.IsScalar()) {
        fail(parent + "?", entry) << "expected a key name in '" << (section.empty() ? "<top>" : section) << "', found "
                                  << describe(entry.key_node);
      }
      entry.key = entry.key_node.Scalar();
      if (const Entry* first = find(entries, entry.key)) {
        fail(parent + entry.key, entry) << "duplicate key '" << parent + entry.key << "' (first set at "
                                        << mark_text(source_, first->key_node.Mark()) << ")";
      }
      entries.push_back(entry);
    }
    return entries;
  }

  void check_keys(const std::string& section, const std::vector<Entry>& entries) {
    const std::vector<std::string>& valid = section.empty() ? schema_.sections : schema_.keys.at(section);
    for (const Entry& entry : entries) {
      if (std::find(valid.begin(), valid.end(), entry.key) != valid.end()) continue;
      const std::string key = section.empty() ? entry.key : section + "." + entry.key;
      Entry at_key = entry;
      at_key.value = entry.key_node;  // point at the key, not its value
      fail(key, at_key) << unknown_key_message(schema_, section, entry.key);
    }
  }

  DataSource source_of(const std::string& key, const Entry& entry) {
    DataSource source;
    const std::vector<std::string> valid(std::begin(kDataSourceKeys), std::end(kDataSourceKeys));
    bool has_path = false;
    for (const Entry& item : entries_of(entry.value, key)) {
      const std::string item_key = key + "." + item.key;
      if (item.key == "path") {
        source.path = convert(item_key, item, static_cast<std::string*>(nullptr));
        has_path = true;
      } else if (item.key == "weight") {
        source.weight = convert(item_key, item, static_cast<double*>(nullptr));
      } else {
        Entry at_key = item;
        at_key.value = item.key_node;
        const std::string close = closest_match(item.key, valid);
        const std::string hint = close.empty() ? "" : "; did you mean '" + key + "." + close + "'?";
        fail(item_key, at_key) << "unknown key '" << item_key << "'" << hint
                               << " (valid keys in a data source: " << join(valid) << ")";
      }
    }
    if (!has_path) {
      fail(key, entry) << key << ": a data source needs a 'path' (and optionally a 'weight')";
    }
    return source;
  }

  // --- scalar conversions; the pointer argument only selects the overload ---

  const std::string& scalar(const std::string& key, const Entry& entry, const char* expected) {
    if (!entry.value.IsScalar()) {
      fail(key, entry) << key << ": expected " << expected << ", found " << describe(entry.value);
    }
    record(key, entry);
    return entry.value.Scalar();
  }

  std::string convert(const std::string& key, const Entry& entry, std::string*) {
    if (entry.value.IsNull()) {  // `val:` with nothing after it: the empty string
      record(key, entry);
      return "";
    }
    return scalar(key, entry, "a string");
  }

  int64_t convert(const std::string& key, const Entry& entry, int64_t*) {
    int64_t value = 0;
    if (!to_int64(scalar(key, entry, "an integer"), value)) {
      fail(key, entry) << key << ": expected an integer, found " << describe(entry.value);
    }
    return value;
  }

  int convert(const std::string& key, const Entry& entry, int*) {
    const int64_t value = convert(key, entry, static_cast<int64_t*>(nullptr));
    if (value < std::numeric_limits<int>::min() || value > std::numeric_limits<int>::max()) {
      fail(key, entry) << key << ": expected a 32-bit integer, found " << describe(entry.value);
    }
    return static_cast<int>(value);
  }

  uint64_t convert(const std::string& key, const Entry& entry, uint64_t*) {
    uint64_t value = 0;
    if (!to_uint64(scalar(key, entry, "a non-negative integer"), value)) {
      fail(key, entry) << key << ": expected a non-negative integer, found " << describe(entry.value);
    }
    return value;
  }

  double convert(const std::string& key, const Entry& entry, double*) {
    double value = 0;
    if (!to_double(scalar(key, entry, "a number"), value)) {
      fail(key, entry) << key << ": expected a number, found " << describe(entry.value);
    }
    return value;
  }

  bool convert(const std::string& key, const Entry& entry, bool*) {
    bool value = false;
    if (!to_bool(scalar(key, entry, "true or false"), value)) {
      fail(key, entry) << key << ": expected true or false, found " << describe(entry.value);
    }
    return value;
  }

  const std::string& source_;
  const SchemaKeys& schema_;
  const std::map<std::string, std::string>& overridden_;  // dotted key → override text
  std::vector<Entry> root_;
  std::vector<Entry> entries_;  // of the section being visited
  std::string section_;
  std::map<std::string, std::string> origins_;
};

}  // namespace

SchemaKeys schema_keys() {
  SchemaKeys keys;
  KeyCollector collector(keys);
  const Config defaults;
  visit_config(collector, defaults);
  return keys;
}

namespace {

// One `--set KEY=VALUE`: the key checked against the schema, the value parsed as YAML (so lists
// and maps work: `data.train=[a.bin, b.bin]`).
struct Override {
  std::string text;
  std::vector<std::string> path;  // {section} or {section, key}
  YAML::Node value;
};

Override parse_override(const std::string& text, const SchemaKeys& schema) {
  const std::string where = "override '" + text + "': ";
  const size_t equals = text.find('=');
  TESSEL_CHECK(equals != std::string::npos)
      << where << "no '=' found; expected KEY=VALUE with a dotted key, e.g. --set optim.lr=3e-4";
  const std::string key = trim(text.substr(0, equals));
  const std::string value = trim(text.substr(equals + 1));

  Override out{text, {}, {}};
  for (size_t begin = 0;;) {
    const size_t dot = key.find('.', begin);
    out.path.push_back(key.substr(begin, dot == std::string::npos ? std::string::npos : dot - begin));
    if (dot == std::string::npos) break;
    begin = dot + 1;
  }
  const bool nested = out.path.size() == 3 && schema.keys.count(out.path[0] + "." + out.path[1]) != 0;
  for (const std::string& part : out.path) {
    TESSEL_CHECK(!part.empty() && (out.path.size() <= 2 || nested))
        << where << "the key '" << key << "' must be SECTION.KEY (e.g. optim.lr), SECTION, or SECTION.MAP.KEY "
        << "for a map of keys (e.g. model.moe.experts)";
  }
  const std::vector<std::string>& sections = schema.sections;
  TESSEL_CHECK(std::find(sections.begin(), sections.end(), out.path[0]) != sections.end())
      << where << unknown_key_message(schema, "", out.path[0]);
  if (out.path.size() >= 2) {
    const std::vector<std::string>& keys = schema.keys.at(out.path[0]);
    TESSEL_CHECK(std::find(keys.begin(), keys.end(), out.path[1]) != keys.end())
        << where << unknown_key_message(schema, out.path[0], out.path[1]);
  }
  if (nested) {
    const std::string map = out.path[0] + "." + out.path[1];
    const std::vector<std::string>& keys = schema.keys.at(map);
    TESSEL_CHECK(std::find(keys.begin(), keys.end(), out.path[2]) != keys.end())
        << where << unknown_key_message(schema, map, out.path[2]);
  }
  try {
    out.value = YAML::Load(value);
  } catch (const YAML::Exception& e) {
    TESSEL_FAIL() << where << "YAML syntax error in the value: " << e.msg;
  }
  return out;
}

// The value of `key` in `map`, found by iterating (operator[] on a Node may insert).
YAML::Node child(const YAML::Node& map, const std::string& key) {
  for (auto it = map.begin(); it != map.end(); ++it) {
    if (it->first.IsScalar() && it->first.Scalar() == key) return it->second;
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

void apply_override(YAML::Node& root, const Override& override, const std::string& source) {
  // Every write goes through `root` so the new nodes join root's memory: yaml-cpp frees nodes
  // with the last Node handle of the memory they were created in.
  const std::string& section = override.path[0];
  if (override.path.size() == 1) {
    root[section] = override.value;
    return;
  }
  const YAML::Node node = child(root, section);
  if (!node.IsDefined() || node.IsNull()) {
    root[section] = YAML::Node(YAML::NodeType::Map);
  } else {
    TESSEL_CHECK(node.IsMap()) << "override '" << override.text << "': cannot set '" << section << "."
                               << override.path[1] << "': '" << section << "' at " << mark_text(source, node.Mark())
                               << " is " << kind_name(node) << ", not a map of keys";
  }
  if (override.path.size() == 2) {
    root[section][override.path[1]] = override.value;
    return;
  }
  const std::string& map = override.path[1];
  const YAML::Node inner = child(root[section], map);
  if (!inner.IsDefined() || inner.IsNull()) {
    root[section][map] = YAML::Node(YAML::NodeType::Map);
  } else {
    TESSEL_CHECK(inner.IsMap()) << "override '" << override.text << "': cannot set '" << section << "." << map << "."
                                << override.path[2] << "': '" << section << "." << map << "' at "
                                << mark_text(source, inner.Mark()) << " is " << kind_name(inner)
                                << ", not a map of keys";
  }
  root[section][map][override.path[2]] = override.value;
}

}  // namespace

Config parse_config(const std::string& yaml_text, const std::string& source,
                    const std::vector<std::string>& overrides) {
  const std::string name = source.empty() ? "<string>" : source;
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {  // ParserException and its kin carry the position
    TESSEL_FAIL() << mark_text(name, e.mark) << ": YAML syntax error: " << e.msg;
  }
  if (!root.IsDefined() || root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  TESSEL_CHECK(root.IsMap()) << mark_text(name, root.Mark())
                             << ": expected a map of sections (run:, model:, ...) at the top "
                             << "level, found " << describe(root);

  const SchemaKeys schema = schema_keys();
  std::map<std::string, std::string> overridden;  // dotted key → override text, last one wins
  for (const std::string& text : overrides) {
    const Override override = parse_override(text, schema);
    apply_override(root, override, name);
    std::string key = override.path[0];
    for (size_t i = 1; i < override.path.size(); ++i) key += "." + override.path[i];
    if (override.path.size() < 3) {  // a whole section replaced: earlier overrides inside it are gone
      for (auto it = overridden.begin(); it != overridden.end();) {
        it = it->first.rfind(key + ".", 0) == 0 ? overridden.erase(it) : std::next(it);
      }
    }
    overridden[key] = text;
  }

  Config config;
  Parser parser(name, schema, overridden);
  parser.parse(root, config);
  config.source = name;
  config.origins = parser.origins();
  // The preset knobs that depend on others: resolved once every key is known.
  if (config.origins.count("model.kv_heads") == 0) config.model.kv_heads = config.model.heads;
  if (config.origins.count("model.ffn_dim") == 0) {
    config.model.ffn_dim = preset_ffn_dim(config.model.arch, config.model.d_model);
  }
  // A warmup longer than the run (a quick `--set run.steps=5` of a real config) warms up over
  // the whole run: clamped, with a warning, rather than refused.
  if (config.optim.warmup_steps > config.run.steps && config.run.steps >= 1) {
    const auto at = config.origins.find("optim.warmup_steps");
    spdlog::warn("{}optim.warmup_steps={} exceeds run.steps={}: warming up over all {} steps instead",
                 at == config.origins.end() ? "" : at->second + ": ", config.optim.warmup_steps, config.run.steps,
                 config.run.steps);
    config.optim.warmup_steps = config.run.steps;
  }
  validate_config(config);
  return config;
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  namespace fs = std::filesystem;
  std::error_code error;
  if (!fs::exists(path, error)) {
    const fs::path cwd = fs::current_path(error);
    TESSEL_FAIL() << "config file '" << path << "' not found (relative paths are taken from the "
                  << "working directory " << cwd.string() << "); hint: check the path, or start "
                  << "from one of the ready configs in configs/";
  }
  TESSEL_CHECK(!fs::is_directory(path, error))
      << "config file '" << path << "' is a directory; hint: name a .yaml file inside it";
  std::ifstream in(path, std::ios::binary);
  TESSEL_CHECK(in.good()) << "cannot read config file '" << path << "': " << std::strerror(errno);
  std::ostringstream text;
  text << in.rdbuf();
  return parse_config(text.str(), path, overrides);
}

}  // namespace tessel
