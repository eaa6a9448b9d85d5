// Calibration of the cost model: what `tessel tune` measured against what the planner predicted,
// recorded per hardware profile and per model shape, and the rule by which a later plan uses
// one. The measured / predicted ratio absorbs what the cost model leaves out (kernel launches,
// framework overheads, GEMM efficiency other than the profile's); how much that is depends on the
// work per kernel, so a ratio carries over only to models close to the one measured
// (calibration_applies). One JSON file per hardware profile, under $TESSEL_CALIBRATION_DIR, or
// $XDG_CACHE_HOME/tessel/calibration, or ~/.cache/tessel/calibration, named <hardware>.json:
//
//   {"format": 2, "hardware": "cpu-local",
//    "models": [{"model": {ModelShape's fields}, "ratios": [1.02, 1.11]}, ...]}
//
// Files of the first format ({"hardware": ..., "ratios": [...]}, no model) are read, never used
// (they do not say which model they measured), and replaced by the next record. Not safe against
// two processes recording the same file at once (the last rewrite wins); reading is.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/config/config.h"
#include "core/io/json.h"

namespace tessel {

// What identifies a model for calibration: its shape, precision and parameter count.
struct ModelShape {
  std::string arch;
  int64_t layers = 0, d_model = 0, heads = 0, kv_heads = 0, ffn_dim = 0, seq_len = 0, vocab_size = 0;
  std::string precision;   // precision.compute
  int64_t parameters = 0;  // of the whole model (model_parameters)

  static ModelShape of(const Config& config);
  // "a 1.2M-parameter llama (4 layers, d_model 128, seq_len 64, fp32)"
  std::string describe() const;
  JsonValue to_json() const;  // the fields above, as the calibration file and `tessel plan --format json` hold them
  bool operator==(const ModelShape& o) const;
};

// "1.2M", "124M", "70B": a parameter count as people write it.
std::string parameter_count(double n);

// Whether a ratio measured on `measured` applies to `planned`: same precision, parameter counts
// within 2x of each other and seq_len within 2x (calibration.cc says why). When not, `why_not`
// (if given) says what differs, as "the planned model has 70B parameters".
bool calibration_applies(const ModelShape& measured, const ModelShape& planned, std::string* why_not = nullptr);

// The ratios recorded for one model on one hardware.
struct CalibrationRecord {
  std::string hardware;    // the profile's name, as the file says
  bool has_model = false;  // false for a file of the first format
  ModelShape model;
  std::vector<double> ratios;  // measured / predicted step time, one per tuned layout
};

// What a plan applies: the ratio, and which record it comes from or why there is none.
struct Calibration {
  bool used = false;
  double ratio = 1.0;  // median of the record's ratios when used, else 1
  int runs = 0;        // ratios behind it
  ModelShape model;    // the model measured, when used
  std::string path;    // the calibration file (whether it exists or not)
  std::string note;    // one sentence for the plan's output: which calibration, or why none
  int replaced = 0;    // record_calibration only: ratios of the first format (or other hardware) dropped
};

// The calibration file of a hardware profile, where tessel tune records and tessel plan reads.
std::string calibration_file(const std::string& hardware);
// The records in `path`; none when the file does not exist. Malformed files are errors naming
// the file and what was wrong, with a hint to delete it.
std::vector<CalibrationRecord> read_calibration_records(const std::string& path);
// Of `records` (read from `path`), the one of `hardware` that applies to `planned` and is closest
// to it (the nearest parameter count and seq_len), or none, with the note either way.
Calibration choose_calibration(const std::vector<CalibrationRecord>& records, const ModelShape& planned,
                               const std::string& hardware, const std::string& path);
// choose_calibration over the records in `path` (calibration_file(hardware) but in tests).
Calibration read_calibration(const std::string& path, const std::string& hardware, const ModelShape& planned);
// Adds `ratios` to the record of `model` on `hardware` in `path` (a new record when the model's
// shape has none) and rewrites the file; the ratios of a file of the first format are dropped.
// Returns the calibration a plan of that model would now use.
Calibration record_calibration(const std::string& path, const std::string& hardware, const ModelShape& model,
                               const std::vector<double>& ratios);

}  // namespace tessel
