#include "parallel/planner/calibration.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <sstream>

#include "core/error.h"
#include "core/io/file.h"
#include "core/measure.h"
#include "parallel/planner/cost_model.h"

namespace tessel {
namespace fs = std::filesystem;

// When a ratio carries over. The ratio measured / predicted is what the cost model leaves out:
// per-kernel launch and framework overheads, which grow with the number of kernels (layers,
// micro-batches) and not with FLOPs, and GEMM and attention efficiencies other than the
// profile's, which depend on the matrices' widths (d_model, ffn_dim) and rows (micro × seq_len).
// A 1M-parameter model on a CPU is nearly all overhead and a 70B model on GPUs nearly all GEMM,
// so the ratio of one says nothing of the other. Models within 2x in parameters have widths
// within 2x (√2 when width and depth grow together), and seq_len within 2x keeps attention's
// share of the FLOPs (about T / 6C of the GEMMs') and the GEMMs' row counts within 2x too: same
// regime, same kind of overhead. The precision must match, since peak, kernels and bytes moved
// all change with it. Why 2x and not tighter: the five layouts of one model that `tessel tune`
// measured spread over 0.98–1.11 (docs/planner.md), so closer models would not give ratios one
// could tell apart; much wider and the overhead share can change several-fold.
namespace {

constexpr double kCloseFactor = 2.0;
constexpr int kFormat = 2;

// |ln a/b|: how far apart two sizes are, the same either way round.
double log_distance(double a, double b) { return std::abs(std::log(a / b)); }

double distance(const ModelShape& a, const ModelShape& b) {
  return log_distance(static_cast<double>(std::max<int64_t>(a.parameters, 1)),
                      static_cast<double>(std::max<int64_t>(b.parameters, 1))) +
         log_distance(static_cast<double>(std::max<int64_t>(a.seq_len, 1)),
                      static_cast<double>(std::max<int64_t>(b.seq_len, 1)));
}

ModelShape shape_from_json(const JsonValue& j, const std::string& path) {
  TESSEL_CHECK(j.is_object()) << path << ": a record's 'model' is " << json_kind_name(j.kind())
                              << ", expected an object of the model's shape; hint: delete the file to start over";
  auto field = [&](const char* key) -> const JsonValue& {
    const JsonValue* v = j.find(key);
    TESSEL_CHECK(v != nullptr) << path << ": a record's model has no '" << key
                               << "'; hint: delete the file to start over (tessel tune writes it again)";
    return *v;
  };
  ModelShape s;
  s.arch = field("arch").as_string();
  s.layers = field("layers").as_int();
  s.d_model = field("d_model").as_int();
  s.heads = field("heads").as_int();
  s.kv_heads = field("kv_heads").as_int();
  s.ffn_dim = field("ffn_dim").as_int();
  s.seq_len = field("seq_len").as_int();
  s.vocab_size = field("vocab_size").as_int();
  s.precision = field("precision").as_string();
  s.parameters = field("parameters").as_int();
  TESSEL_CHECK(s.parameters > 0 && s.seq_len > 0)
      << path << ": a record's model has " << s.parameters << " parameters and seq_len " << s.seq_len
      << ", expected both positive; hint: delete the file to start over";
  return s;
}

std::vector<double> ratios_from_json(const JsonValue* list, const std::string& path) {
  TESSEL_CHECK(list != nullptr && list->is_array())
      << path << ": no 'ratios' list where one was expected; hint: delete the file to start over";
  std::vector<double> ratios;
  for (const JsonValue& r : list->as_array()) {
    const double x = r.as_double();
    TESSEL_CHECK(x > 0 && std::isfinite(x))
        << path << ": a ratio of " << x << ", expected a positive measured / predicted; hint: delete the file";
    ratios.push_back(x);
  }
  return ratios;
}

std::string ratio_text(double r) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3g", r);
  return buf;
}

}  // namespace

ModelShape ModelShape::of(const Config& config) {
  const ModelConfig& m = config.model;
  ModelShape s;
  s.arch = name_of(m.arch);
  s.layers = m.layers;
  s.d_model = m.d_model;
  s.heads = m.heads;
  s.kv_heads = m.kv_heads;
  s.ffn_dim = m.ffn_dim;
  s.seq_len = m.seq_len;
  s.vocab_size = m.vocab_size;
  s.precision = name_of(config.precision.compute);
  s.parameters = model_parameters(m);
  return s;
}

std::string ModelShape::describe() const {
  std::ostringstream s;
  s << "a " << parameter_count(static_cast<double>(parameters)) << "-parameter " << arch << " (" << layers
    << " layers, d_model " << d_model << ", seq_len " << seq_len << ", " << precision << ")";
  return s.str();
}

JsonValue ModelShape::to_json() const {
  return JsonValue::object({{"arch", JsonValue::string(arch)},
                            {"layers", JsonValue::integer(layers)},
                            {"d_model", JsonValue::integer(d_model)},
                            {"heads", JsonValue::integer(heads)},
                            {"kv_heads", JsonValue::integer(kv_heads)},
                            {"ffn_dim", JsonValue::integer(ffn_dim)},
                            {"seq_len", JsonValue::integer(seq_len)},
                            {"vocab_size", JsonValue::integer(vocab_size)},
                            {"precision", JsonValue::string(precision)},
                            {"parameters", JsonValue::integer(parameters)}});
}

bool ModelShape::operator==(const ModelShape& o) const {
  return arch == o.arch && layers == o.layers && d_model == o.d_model && heads == o.heads && kv_heads == o.kv_heads &&
         ffn_dim == o.ffn_dim && seq_len == o.seq_len && vocab_size == o.vocab_size && precision == o.precision &&
         parameters == o.parameters;
}

std::string parameter_count(double n) {
  const std::pair<double, const char*> units[] = {{1e12, "T"}, {1e9, "B"}, {1e6, "M"}, {1e3, "K"}};
  for (const auto& [unit, suffix] : units) {
    if (n >= 0.9995 * unit) {  // what %.3g would write as 1000 of the unit below is 1 of this one
      char buf[32];
      std::snprintf(buf, sizeof(buf), "%.3g%s", n / unit, suffix);
      return buf;
    }
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.0f", n);
  return buf;
}

bool calibration_applies(const ModelShape& measured, const ModelShape& planned, std::string* why_not) {
  std::ostringstream why;
  if (log_distance(static_cast<double>(planned.parameters), static_cast<double>(measured.parameters)) >
      std::log(kCloseFactor) + 1e-12) {
    why << "the planned model has " << parameter_count(static_cast<double>(planned.parameters)) << " parameters, "
        << (planned.parameters > measured.parameters ? "more than 2x" : "under half") << " the "
        << parameter_count(static_cast<double>(measured.parameters)) << " measured";
  } else if (log_distance(static_cast<double>(planned.seq_len), static_cast<double>(measured.seq_len)) >
             std::log(kCloseFactor) + 1e-12) {
    why << "the planned model's seq_len is " << planned.seq_len << ", "
        << (planned.seq_len > measured.seq_len ? "more than 2x" : "under half") << " the " << measured.seq_len
        << " measured";
  } else if (measured.precision != planned.precision) {
    why << "the planned model computes in " << planned.precision << ", the measured one in " << measured.precision;
  } else {
    return true;
  }
  if (why_not != nullptr) *why_not = why.str();
  return false;
}

std::string calibration_file(const std::string& hardware) {
  std::string dir;
  if (const char* d = std::getenv("TESSEL_CALIBRATION_DIR"); d != nullptr && *d != '\0') {
    dir = d;
  } else if (const char* x = std::getenv("XDG_CACHE_HOME"); x != nullptr && *x != '\0') {
    dir = std::string(x) + "/tessel/calibration";
  } else {
    const char* home = std::getenv("HOME");
    dir = std::string(home != nullptr ? home : ".") + "/.cache/tessel/calibration";
  }
  return (fs::path(dir) / (hardware + ".json")).string();
}

std::vector<CalibrationRecord> read_calibration_records(const std::string& path) {
  std::vector<CalibrationRecord> records;
  if (!fs::exists(path)) return records;
  const JsonValue j = parse_json(read_file(path), path);
  TESSEL_CHECK(j.is_object()) << path << ": found " << json_kind_name(j.kind())
                              << ", expected a calibration object; hint: delete the file to start over";
  const JsonValue* hw = j.find("hardware");
  TESSEL_CHECK(hw != nullptr && hw->is_string())
      << path << ": no 'hardware' name; hint: delete the file to start over (tessel tune writes it again)";
  const JsonValue* format = j.find("format");
  if (format == nullptr) {  // the first format: ratios without the model they measured
    CalibrationRecord r;
    r.hardware = hw->as_string();
    r.ratios = ratios_from_json(j.find("ratios"), path);
    records.push_back(std::move(r));
    return records;
  }
  TESSEL_CHECK(format->is_integer() && format->as_int() == kFormat)
      << path << ": calibration format " << format->dump() << ", expected " << kFormat
      << " (written by a newer tessel?); hint: delete the file, or plan with the tessel that wrote it";
  const JsonValue* models = j.find("models");
  TESSEL_CHECK(models != nullptr && models->is_array())
      << path << ": no 'models' list; hint: delete the file to start over";
  for (const JsonValue& m : models->as_array()) {
    TESSEL_CHECK(m.is_object()) << path << ": a record is " << json_kind_name(m.kind())
                                << ", expected an object; hint: delete the file to start over";
    CalibrationRecord r;
    r.hardware = hw->as_string();
    r.has_model = true;
    const JsonValue* shape = m.find("model");
    TESSEL_CHECK(shape != nullptr) << path << ": a record has no 'model'; hint: delete the file to start over";
    r.model = shape_from_json(*shape, path);
    r.ratios = ratios_from_json(m.find("ratios"), path);
    records.push_back(std::move(r));
  }
  return records;
}

Calibration choose_calibration(const std::vector<CalibrationRecord>& records, const ModelShape& planned,
                               const std::string& hardware, const std::string& path) {
  Calibration c;
  c.path = path;
  const CalibrationRecord* best = nullptr;     // applies, closest
  const CalibrationRecord* nearest = nullptr;  // does not apply, closest: to say why
  bool old_format = false, other_hardware = false;
  for (const CalibrationRecord& r : records) {
    if (r.ratios.empty()) continue;
    if (r.hardware != hardware) {
      other_hardware = true;
      continue;
    }
    if (!r.has_model) {
      old_format = true;
      continue;
    }
    const CalibrationRecord*& slot = calibration_applies(r.model, planned) ? best : nearest;
    if (slot == nullptr || distance(r.model, planned) < distance(slot->model, planned)) slot = &r;
  }
  std::ostringstream note;
  if (best != nullptr) {
    c.used = true;
    c.ratio = median(best->ratios);
    c.runs = static_cast<int>(best->ratios.size());
    c.model = best->model;
    note << "times scaled by " << ratio_text(c.ratio) << ", the median measured / predicted of " << c.runs
         << " runs of tessel tune of " << best->model.describe() << " on " << hardware << " (" << path << ")";
  } else if (nearest != nullptr) {
    std::string why;
    calibration_applies(nearest->model, planned, &why);
    note << "calibration from tessel tune of " << nearest->model.describe() << " on " << hardware
         << " not used: " << why << " (a ratio carries over only within 2x in parameters and seq_len, in the same "
         << "precision); times are the cost model's own; hint: run tessel tune on a model close to this one ("
         << planned.describe() << ") on " << hardware << " to calibrate it (records in " << path << ")";
  } else if (old_format) {
    note << "calibration in " << path << " not used: it is of the first format, which did not record the model "
         << "it measured; times are the cost model's own; hint: run tessel tune on a model close to this one on "
         << hardware << " (its record replaces the file)";
  } else if (other_hardware) {
    note << "calibration in " << path << " not used: it was recorded for other hardware than " << hardware
         << "; times are the cost model's own; hint: delete the file, or run tessel tune on " << hardware;
  } else {
    note << "no calibration: tessel tune has recorded none on " << hardware << " (" << path
         << "); times are the cost model's own";
  }
  c.note = note.str();
  return c;
}

Calibration read_calibration(const std::string& path, const std::string& hardware, const ModelShape& planned) {
  return choose_calibration(read_calibration_records(path), planned, hardware, path);
}

Calibration record_calibration(const std::string& path, const std::string& hardware, const ModelShape& model,
                               const std::vector<double>& ratios) {
  std::vector<CalibrationRecord> records;
  int dropped = 0;  // ratios of the first format, or of a file of other hardware
  for (CalibrationRecord& r : read_calibration_records(path)) {
    if (r.has_model && r.hardware == hardware) {
      records.push_back(std::move(r));
    } else {
      dropped += static_cast<int>(r.ratios.size());
    }
  }
  CalibrationRecord* mine = nullptr;
  for (CalibrationRecord& r : records) {
    if (r.model == model) mine = &r;
  }
  if (mine == nullptr) {
    records.push_back({hardware, true, model, {}});
    mine = &records.back();
  }
  mine->ratios.insert(mine->ratios.end(), ratios.begin(), ratios.end());
  JsonValue::Array list;
  for (const CalibrationRecord& r : records) {
    JsonValue::Array rs;
    for (double x : r.ratios) rs.push_back(JsonValue::number(x));
    list.push_back(JsonValue::object({{"model", r.model.to_json()}, {"ratios", JsonValue::array(std::move(rs))}}));
  }
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  write_file_atomic(path, JsonValue::object({{"format", JsonValue::integer(kFormat)},
                                             {"hardware", JsonValue::string(hardware)},
                                             {"models", JsonValue::array(std::move(list))}})
                                  .dump() +
                              "\n");
  Calibration c = choose_calibration(records, model, hardware, path);
  c.replaced = dropped;
  return c;
}

}  // namespace tessel
