// validate_config: the checks a typed parse cannot make alone (ranges, divisibility, pairs of
// keys), for configs from parse_config and for configs built by hand. Each error names the keys
// and their values, where the key was set when parse_config recorded it (Config::origins), and
// what would be valid. Checks that need the world size (dp, tp·pp·dp = ranks) live with the
// topology, not here.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "core/config/config.h"
#include "core/config/schema.h"
#include "core/config/suggest.h"
#include "core/error.h"

namespace tessel {

namespace {

// "1, 2, 3, 4, 6, 12": what a divisibility error offers instead (the first 64), in O(sqrt n).
std::string divisors(int64_t n) {
  std::vector<int64_t> low, high;
  for (int64_t d = 1; d * d <= n; ++d) {
    if (n % d != 0) continue;
    low.push_back(d);
    if (d != n / d) high.push_back(n / d);
  }
  low.insert(low.end(), high.rbegin(), high.rend());
  std::vector<std::string> out;
  for (size_t i = 0; i < low.size() && i < 64; ++i) out.push_back(std::to_string(low[i]));
  return join(out);
}

// Common divisors of a and b, for a degree that must divide both (tp divides heads and kv_heads).
std::string common_divisors(int64_t a, int64_t b) { return divisors(std::gcd(a, b)); }

class Checker {
 public:
  explicit Checker(const Config& config) : c_(config) {}

  // "cfg.yaml:5:10: " for the first of `keys` that was set explicitly, else "cfg.yaml: " (or
  // nothing for a config built in code).
  std::string at(const std::vector<std::string>& keys) const {
    for (const std::string& key : keys) {
      auto it = c_.origins.find(key);
      if (it != c_.origins.end()) return it->second + ": ";
    }
    return c_.source.empty() ? "" : c_.source + ": ";
  }

  void at_least(const char* key, int64_t value, int64_t minimum, const char* hint = "") {
    TESSEL_CHECK(value >= minimum) << at({key}) << key << " must be at least " << minimum << ", found " << value
                                   << hint;
  }
  void at_most(const char* key, int64_t value, int64_t maximum, const char* why) {
    TESSEL_CHECK(value <= maximum) << at({key}) << key << " must be at most " << maximum << ", found " << value << " ("
                                   << why << ")";
  }
  // The product of `factors` (each a key and its value) times `bytes` must fit in int64: the
  // size of a buffer Tessel would allocate. The error names every key of the product.
  void fits_int64(std::initializer_list<std::pair<const char*, int64_t>> factors, int64_t bytes, const char* what) {
    int64_t product = bytes;
    bool overflow = false;
    for (const auto& f : factors) overflow |= __builtin_mul_overflow(product, f.second, &product);
    if (!overflow) return;
    std::string keys, values, hint;
    std::vector<std::string> names;
    for (const auto& f : factors) {
      keys += (keys.empty() ? "" : " x ") + std::string(f.first);
      values += (values.empty() ? "" : " x ") + std::to_string(f.second);
      if (std::find(names.begin(), names.end(), f.first) != names.end()) continue;
      hint += (hint.empty() ? "" : ", ") + std::string(f.first);
      names.push_back(f.first);
    }
    TESSEL_FAIL() << at(names) << "the " << what << " would take " << keys << " x " << bytes << " bytes = " << values
                  << " x " << bytes << ", more than 64-bit arithmetic counts and any machine holds; hint: lower "
                  << hint;
  }
  void positive(const char* key, double value) {
    TESSEL_CHECK(std::isfinite(value) && value > 0)
        << at({key}) << key << " must be a positive number, found " << value;
  }
  void non_negative(const char* key, double value) {
    TESSEL_CHECK(std::isfinite(value) && value >= 0) << at({key}) << key << " must be a number >= 0, found " << value;
  }
  void fraction(const char* key, double value) {
    TESSEL_CHECK(value >= 0 && value < 1) << at({key}) << key << " must be in [0, 1), found " << value
                                          << "; hint: typical values are 0.9 (beta1) and 0.95 or 0.999 (beta2)";
  }
  void non_empty(const char* key, const std::string& value, const char* hint) {
    TESSEL_CHECK(!value.empty()) << at({key}) << key << " must not be empty; " << hint;
  }

  // The schema visitor: what a typed value can still get wrong in a config built in code.
  template <typename Body>
  void section(const char* name, Body&& body) {
    section_ = name;
    body();
  }
  template <typename Body>
  void subsection(const char* name, Body&& body) {
    const std::string parent = section_;
    section_ = parent + "." + name;
    body();
    section_ = parent;
  }
  template <typename T>
  void field(const char*, const T&) {}
  template <typename E>
  void choice(const char* name, E value) {
    TESSEL_CHECK(std::string(name_of(value)) != "?")
        << at({section_ + "." + name}) << section_ << "." << name << ": invalid value " << static_cast<int>(value)
        << "; valid values: " << join(valid_names<E>());
  }
  void preset(const char* name, const ModelConfig& model) { choice(name, model.arch); }
  void counts(const char* name, const std::vector<int64_t>& values) {
    for (int64_t n : values) {
      TESSEL_CHECK(n >= 1) << at({section_ + "." + name}) << section_ << "." << name << ": " << n
                           << " in the list; every entry must be a positive integer";
    }
  }
  void layer_split(const char* name, const LayerSplit& split) {
    choice(name, split.kind);
    for (int64_t n : split.counts) {
      TESSEL_CHECK(n >= 1) << at({section_ + "." + name}) << section_ << "." << name << ": a stage of " << n
                           << " layers; every stage needs at least one";
    }
  }
  void dp(const char* name, int64_t value) {
    TESSEL_CHECK(value >= 0) << at({"parallel.dp"}) << "parallel.dp must be 'auto' (0) or a "
                             << "positive integer, found " << value;
  }
  void loss_scale(const char* name, double value) {
    TESSEL_CHECK(value == 0 || (std::isfinite(value) && value > 0))
        << at({"precision.loss_scale"}) << "precision.loss_scale: expected 'dynamic' (0) or a "
        << "positive number, found " << value;
  }
  void resume(const char* name, const CheckpointConfig& checkpoint) {
    TESSEL_CHECK(checkpoint.resume != ResumeMode::kPath || !checkpoint.resume_path.empty())
        << at({"checkpoint.resume"}) << "checkpoint.resume must not be empty; valid values: auto, none, or the "
        << "path of a checkpoint";
  }
  void sources(const char*, const std::vector<DataSource>&) {}

 private:
  const Config& c_;
  std::string section_;
};

}  // namespace

void validate_config(const Config& c) {
  Checker check(c);
  visit_config(check, c);

  const RunConfig& run = c.run;
  check.non_empty("run.name", run.name, "it names the run in logs and metrics");
  check.non_empty("run.out_dir", run.out_dir, "set a directory for logs, metrics and checkpoints");
  check.at_least("run.steps", run.steps, 0);
  check.at_least("run.log_every", run.log_every, 1);
  check.at_least("run.eval_every", run.eval_every, 0, " (0 turns evaluation off)");
  check.at_least("run.eval_batches", run.eval_batches, 1);
  check.at_least("run.threads", run.threads, 0, " (0 uses all cores shared among local ranks)");
  check.at_least("run.exit_after_steps", run.exit_after_steps, 0, " (0: no limit)");
  check.non_negative("run.exit_after_minutes", run.exit_after_minutes);

  const ModelConfig& m = c.model;
  check.at_least("model.vocab_size", m.vocab_size, 1);
  check.at_least("model.seq_len", m.seq_len, 1);
  check.at_least("model.layers", m.layers, 1);
  check.at_least("model.d_model", m.d_model, 1);
  check.at_least("model.heads", m.heads, 1);
  check.at_least("model.kv_heads", m.kv_heads, 1);
  check.at_least("model.ffn_dim", m.ffn_dim, 1);
  // Shapes far beyond any model trained are refused before the arithmetic on them (sizes,
  // divisor lists in the messages below) can overflow or run for hours.
  check.at_most("model.vocab_size", m.vocab_size, kMaxVocabSize, "token ids are 32-bit");
  check.at_most("model.seq_len", m.seq_len, kMaxShapeDim, "a larger shape overflows size arithmetic");
  check.at_most("model.layers", m.layers, kMaxLayers, "a larger shape overflows size arithmetic");
  check.at_most("model.d_model", m.d_model, kMaxShapeDim, "a larger shape overflows size arithmetic");
  check.at_most("model.heads", m.heads, kMaxShapeDim, "a larger shape overflows size arithmetic");
  check.at_most("model.kv_heads", m.kv_heads, kMaxShapeDim, "a larger shape overflows size arithmetic");
  check.at_most("model.ffn_dim", m.ffn_dim, kMaxShapeDim, "a larger shape overflows size arithmetic");
  check.positive("model.norm_eps", m.norm_eps);
  check.positive("model.rope_theta", m.rope_theta);
  check.non_negative("model.init_std", m.init_std);
  TESSEL_CHECK(m.d_model % m.heads == 0) << check.at({"model.d_model", "model.heads"}) << "model.d_model (" << m.d_model
                                         << ") must be divisible by model.heads (" << m.heads
                                         << ") to give a whole head_dim; "
                                         << "valid heads: " << divisors(m.d_model);
  TESSEL_CHECK(m.heads % m.kv_heads == 0)
      << check.at({"model.kv_heads", "model.heads"}) << "heads (" << m.heads << ") must be divisible by kv_heads ("
      << m.kv_heads << "); valid kv_heads: " << divisors(m.heads);
  TESSEL_CHECK(m.position != Position::kRope || m.head_dim() % 2 == 0)
      << check.at({"model.position", "model.heads", "model.d_model"})
      << "model.position 'rope' rotates pairs of channels, so head_dim = d_model / heads must be "
      << "even, found " << m.d_model << " / " << m.heads << " = " << m.head_dim()
      << "; hint: change model.heads or model.d_model, or use position: learned";

  const MoeConfig& e = m.moe;
  check.at_least("model.moe.experts", e.experts, 0, " (0: a dense model)");
  check.at_most("model.moe.experts", e.experts, kMaxShapeDim, "a larger shape overflows size arithmetic");
  if (e.enabled()) {
    check.at_least("model.moe.top_k", e.top_k, 1);
    TESSEL_CHECK(e.top_k <= e.experts) << check.at({"model.moe.top_k", "model.moe.experts"}) << "model.moe.top_k ("
                                       << e.top_k << ") exceeds model.moe.experts (" << e.experts
                                       << "): each token picks top_k different experts; valid top_k: 1 to "
                                       << e.experts;
    check.at_least("model.moe.shared_experts", e.shared_experts, 0, " (0: no shared expert)");
    check.at_least("model.moe.expert_ffn_dim", e.expert_ffn_dim, 0, " (0: model.ffn_dim)");
    check.at_least("model.moe.shared_ffn_dim", e.shared_ffn_dim, 0, " (0: expert_ffn_dim x shared_experts)");
    check.at_most("model.moe.expert_ffn_dim", e.expert_ffn_dim, kMaxShapeDim,
                  "a larger shape overflows size arithmetic");
    check.at_most("model.moe.shared_ffn_dim", e.shared_ffn_dim, kMaxShapeDim,
                  "a larger shape overflows size arithmetic");
    check.at_most("model.moe.shared_experts", e.shared_experts, kMaxShapeDim,
                  "a larger shape overflows size arithmetic");
    TESSEL_CHECK(e.shared_ffn_dim == 0 || e.shared_experts > 0)
        << check.at({"model.moe.shared_ffn_dim", "model.moe.shared_experts"}) << "model.moe.shared_ffn_dim ("
        << e.shared_ffn_dim << ") sizes the shared expert, but there is none (model.moe.shared_experts is 0); "
        << "hint: set shared_experts: 1, or drop shared_ffn_dim";
    TESSEL_CHECK(!e.shared_gate || e.shared_width(m.ffn_dim) > 0)
        << check.at({"model.moe.shared_gate", "model.moe.shared_experts"}) << "model.moe.shared_gate gates the "
        << "shared expert, but there is none (model.moe.shared_experts is 0); hint: set shared_experts, or "
        << "shared_gate: false";
    check.non_negative("model.moe.capacity_factor", e.capacity_factor);
    check.non_negative("model.moe.aux_loss_coeff", e.aux_loss_coeff);
    check.non_negative("model.moe.bias_update_rate", e.bias_update_rate);
    check.at_least("model.moe.every", e.every, 1);
    check.at_least("model.moe.first_dense", e.first_dense, 0);
    TESSEL_CHECK(e.first_dense < m.layers)
        << check.at({"model.moe.first_dense", "model.layers"}) << "model.moe.first_dense (" << e.first_dense
        << ") leaves no MoE layer in "
        << "model.layers (" << m.layers << "); hint: at most " << m.layers - 1 << ", or experts: 0 for a dense model";
    TESSEL_CHECK(m.arch == Arch::kLlama) << check.at({"model.moe.experts", "model.arch"})
                                         << "model.moe needs arch: llama (experts are named and laid out as "
                                         << "Mixtral's and Qwen2-MoE's), found arch '" << name_of(m.arch)
                                         << "'; hint: set model.arch: llama";
    TESSEL_CHECK(e.expert_width(m.ffn_dim) % c.parallel.tp == 0 && e.shared_width(m.ffn_dim) % c.parallel.tp == 0)
        << check.at({"parallel.tp", "model.moe.expert_ffn_dim", "model.moe.shared_ffn_dim"})
        << "the experts' FFN width (" << e.expert_width(m.ffn_dim) << ") and the shared FFN's ("
        << e.shared_width(m.ffn_dim) << ") must be divisible by parallel.tp (" << c.parallel.tp
        << "): tensor parallelism splits every expert like a dense FFN";
  }

  check.at_least("model.cla_share", m.cla_share, 1, " (1: every layer computes its own keys and values)");
  if (m.cla_share > 1) {
    TESSEL_CHECK(m.arch == Arch::kLlama) << check.at({"model.cla_share", "model.arch"})
                                         << "model.cla_share needs arch: llama (separate k/v projections), found '"
                                         << name_of(m.arch) << "'";
    TESSEL_CHECK(m.layers % m.cla_share == 0)
        << check.at({"model.cla_share", "model.layers"}) << "model.cla_share (" << m.cla_share
        << ") must divide model.layers (" << m.layers << "): layers share keys and values in groups of cla_share; "
        << "valid cla_share: " << divisors(m.layers);
  }

  const ParallelConfig& p = c.parallel;
  check.at_least("parallel.tp", p.tp, 1);
  check.at_least("parallel.pp", p.pp, 1);
  check.at_least("parallel.virtual_stages", p.virtual_stages, 1);
  check.at_most("parallel.tp", p.tp, kMaxParallelDegree, "more ranks than any cluster has");
  check.at_most("parallel.pp", p.pp, kMaxParallelDegree, "more ranks than any cluster has");
  check.at_most("parallel.dp", p.dp, kMaxParallelDegree, "more ranks than any cluster has");
  check.at_most("parallel.virtual_stages", p.virtual_stages, kMaxLayers, "more stages than layers can have");
  check.positive("parallel.bucket_mb", p.bucket_mb);
  check.non_negative("parallel.timeout_s", p.timeout_s);
  {
    std::vector<std::string> axes;
    std::stringstream in(p.order);
    for (std::string axis; std::getline(in, axis, '-');) axes.push_back(axis);
    std::sort(axes.begin(), axes.end());
    TESSEL_CHECK((axes == std::vector<std::string>{"cp", "dp", "pp", "tp"}))
        << check.at({"parallel.order"}) << "parallel.order '" << p.order << "' must name the axes tp, cp, "
        << "dp and pp, each once, joined by '-' innermost first; hint: tp-cp-dp-pp keeps a "
        << "tensor-parallel group on one node";
  }
  // Key/value heads fewer than the ranks are shared (each by tp / kv_heads ranks), except in
  // GPT-2's fused c_attn, whose shards must hold whole q, k and v heads.
  const bool shared_kv = m.arch != Arch::kGpt2 && m.kv_heads < p.tp && p.tp % m.kv_heads == 0;
  TESSEL_CHECK(m.heads % p.tp == 0 && (m.kv_heads % p.tp == 0 || shared_kv))
      << check.at({"parallel.tp", "model.heads"}) << "model.heads (" << m.heads << ") and model.kv_heads ("
      << m.kv_heads << ") must be divisible by parallel.tp (" << p.tp
      << "): each tensor-parallel rank holds whole heads; valid tp: " << common_divisors(m.heads, m.kv_heads)
      << (m.arch == Arch::kGpt2 ? ""
                                : ", or a divisor of model.heads that model.kv_heads divides (key/value heads "
                                  "are then shared by several ranks)");
  TESSEL_CHECK(m.ffn_dim % p.tp == 0) << check.at({"parallel.tp", "model.ffn_dim"}) << "model.ffn_dim (" << m.ffn_dim
                                      << ") must be divisible by parallel.tp (" << p.tp
                                      << "); valid tp: " << common_divisors(m.ffn_dim, std::gcd(m.heads, m.kv_heads));
  TESSEL_CHECK(m.vocab_size % p.tp == 0) << check.at({"parallel.tp", "model.vocab_size"}) << "model.vocab_size ("
                                         << m.vocab_size << ") must be divisible by parallel.tp (" << p.tp
                                         << "): each tensor-parallel rank holds an "
                                         << "equal range of the vocabulary; valid tp: "
                                         << common_divisors(m.vocab_size,
                                                            std::gcd(m.ffn_dim, std::gcd(m.heads, m.kv_heads)))
                                         << "; hint: pad the vocabulary (model.vocab_size) to a multiple of 64 or 128";
  TESSEL_CHECK(!p.sequence_parallel || m.seq_len % p.tp == 0)
      << check.at({"parallel.sequence_parallel", "parallel.tp"}) << "parallel.sequence_parallel "
      << "splits the sequence over tensor-parallel ranks: model.seq_len (" << m.seq_len
      << ") must be divisible by parallel.tp (" << p.tp << ")";
  TESSEL_CHECK(p.schedule != Schedule::kInterleaved || p.virtual_stages >= 2)
      << check.at({"parallel.schedule", "parallel.virtual_stages"}) << "parallel.schedule "
      << "'interleaved' needs parallel.virtual_stages >= 2 (model chunks per pipeline rank), "
      << "found " << p.virtual_stages << "; hint: set virtual_stages, or use schedule: 1f1b";
  TESSEL_CHECK(p.virtual_stages == 1 || p.schedule == Schedule::kInterleaved)
      << check.at({"parallel.virtual_stages", "parallel.schedule"}) << "parallel.virtual_stages (" << p.virtual_stages
      << ") > 1 needs parallel.schedule: interleaved, found '" << name_of(p.schedule) << "'";
  TESSEL_CHECK(p.schedule != Schedule::kInterleaved || p.pp >= 2)
      << check.at({"parallel.schedule", "parallel.pp"}) << "parallel.schedule 'interleaved' interleaves "
      << "model chunks across pipeline ranks and needs parallel.pp >= 2, found " << p.pp
      << "; hint: set parallel.pp, or virtual_stages: 1 and schedule: 1f1b";
  const int64_t stages = p.pp * p.virtual_stages;
  const std::vector<int64_t>& counts = p.pipeline_split.counts;
  const bool listed = !counts.empty();  // then nothing more is divided evenly
  if (listed) {
    // Each stage's layers, as given: one count per stage, adding up to the model.
    int64_t sum = 0;
    for (int64_t n : counts) sum += n;
    TESSEL_CHECK(static_cast<int64_t>(counts.size()) == stages)
        << check.at({"parallel.pipeline_split", "parallel.pp", "parallel.virtual_stages"}) << "parallel.pipeline_split "
        << "lists " << counts.size() << " stages, but parallel.pp (" << p.pp << ") x parallel.virtual_stages ("
        << p.virtual_stages << ") = " << stages << "; hint: one layer count per stage, in stage order";
    TESSEL_CHECK(sum == m.layers) << check.at({"parallel.pipeline_split", "model.layers"})
                                  << "parallel.pipeline_split's layers add up to " << sum << ", but model.layers is "
                                  << m.layers << "; hint: the stages' layers must add up to the model's";
  }
  // ends_as_layers: the embedding and the head weigh as a layer each, so the first and the
  // last stage hold one layer fewer than the others.
  const bool ends = p.pipeline_split.kind == PipelineSplit::kEndsAsLayers && stages > 1 && !listed;
  std::string ends_valid;  // stage counts that split layers + 2 with a layer on every stage
  for (int64_t s = 2; s <= (m.layers + 2) / 2; ++s) {
    if ((m.layers + 2) % s == 0) ends_valid += (ends_valid.empty() ? "" : ", ") + std::to_string(s);
  }
  TESSEL_CHECK(listed || ends || stages <= m.layers)
      << check.at({"parallel.pp", "model.layers", "parallel.virtual_stages"}) << "parallel.pp (" << p.pp
      << ") x parallel.virtual_stages (" << p.virtual_stages << ") = " << stages << " pipeline stages exceed "
      << "model.layers (" << m.layers
      << "): every stage needs at least one layer; valid pp x virtual_stages: " << divisors(m.layers);
  TESSEL_CHECK(!ends || ((m.layers + 2) % stages == 0 && (m.layers + 2) / stages >= 2))
      << check.at({"parallel.pipeline_split", "model.layers", "parallel.pp"}) << "parallel.pipeline_split "
      << "'ends_as_layers' splits model.layers + 2 (" << m.layers + 2 << ": the embedding and the head weigh "
      << "as a layer each) evenly over parallel.pp (" << p.pp << ") x parallel.virtual_stages (" << p.virtual_stages
      << ") = " << stages << " stages, with at least one layer on the first and the last; "
      << "hint: pp x virtual_stages among " << (ends_valid.empty() ? "none" : ends_valid)
      << ", or pipeline_split: even";
  TESSEL_CHECK(listed || ends || m.layers % stages == 0)
      << check.at({"parallel.pp", "model.layers", "parallel.virtual_stages"}) << "model.layers (" << m.layers
      << ") must be divisible by parallel.pp (" << p.pp << ") x parallel.virtual_stages (" << p.virtual_stages
      << ") = " << stages << " so that every pipeline stage holds the same number of layers; valid pp x "
      << "virtual_stages: " << divisors(m.layers);

  if (m.cla_share > 1 && stages > 1) {
    // The first layer of every stage, as the runtime splits them (core/model/model_part.h).
    std::vector<int64_t> firsts;
    if (listed) {
      int64_t at = 0;
      for (int64_t n : counts) {
        firsts.push_back(at);
        at += n;
      }
    } else if (ends) {
      const int64_t per = (m.layers + 2) / stages;
      for (int64_t s = 0, at = 0; s < stages; ++s) {
        firsts.push_back(at);
        at += per - (s == 0 || s + 1 == stages ? 1 : 0);
      }
    } else {
      for (int64_t s = 0; s < stages; ++s) firsts.push_back(s * (m.layers / stages));
    }
    for (size_t s = 0; s < firsts.size(); ++s) {
      TESSEL_CHECK(firsts[s] % m.cla_share == 0)
          << check.at({"model.cla_share", "parallel.pp", "parallel.pipeline_split"}) << "pipeline stage " << s
          << " starts at layer " << firsts[s] << ", inside a group of model.cla_share (" << m.cla_share
          << ") layers that share keys and values; hint: split the layers so that every stage starts at a "
          << "multiple of " << m.cla_share;
    }
  }

  check.at_least("parallel.ep", p.ep, 1);
  check.at_most("parallel.ep", p.ep, kMaxParallelDegree, "more ranks than any cluster has");
  if (p.ep > 1) {
    TESSEL_CHECK(m.moe.enabled()) << check.at({"parallel.ep", "model.moe.experts"}) << "parallel.ep (" << p.ep
                                  << ") splits MoE experts, but the model has none (model.moe.experts is 0); "
                                  << "hint: set model.moe, or parallel.ep: 1";
    TESSEL_CHECK(m.moe.experts % p.ep == 0)
        << check.at({"parallel.ep", "model.moe.experts"}) << "model.moe.experts (" << m.moe.experts
        << ") must be divisible by parallel.ep (" << p.ep << "): each expert-parallel rank computes an equal share; "
        << "valid ep: " << divisors(m.moe.experts);
    TESSEL_CHECK(p.dp == 0 || p.dp % p.ep == 0)
        << check.at({"parallel.ep", "parallel.dp"}) << "parallel.ep (" << p.ep << ") must divide parallel.dp (" << p.dp
        << "): expert-parallel groups are taken from the data-parallel ranks; valid ep: " << divisors(p.dp);
    TESSEL_CHECK(c.batch.shares.empty())
        << check.at({"parallel.ep", "batch.shares"}) << "parallel.ep (" << p.ep << ") exchanges tokens between "
        << "data-parallel ranks in every MoE layer, so they must run the same micro-batches: batch.shares is not "
        << "supported with it; hint: remove batch.shares, or set parallel.ep: 1";
  }

  const BatchConfig& b = c.batch;
  check.at_least("batch.global", b.global, 1);
  check.at_least("batch.micro", b.micro, 1);
  check.at_most("batch.global", b.global, kMaxBatch, "a larger batch overflows size arithmetic");
  check.at_most("batch.micro", b.micro, kMaxBatch, "a larger batch overflows size arithmetic");
  if (e.enabled()) {
    check.fits_int64({{"model.layers", m.layers},
                      {"model.moe.experts", e.experts},
                      {"model.d_model", m.d_model},
                      {"model.moe.expert_ffn_dim", e.expert_width(m.ffn_dim)}},
                     48, "experts' weights, gradients and AdamW moments");
    // Routed rows are indexed with 32-bit integers: every rank of an expert-parallel group may
    // receive all of the group's assignments.
    const double rows = static_cast<double>(p.ep) * static_cast<double>(b.micro) * static_cast<double>(m.seq_len) *
                        static_cast<double>(e.top_k);
    TESSEL_CHECK(rows < 2147483648.0) << check.at({"batch.micro", "model.seq_len", "model.moe.top_k", "parallel.ep"})
                                      << "parallel.ep x batch.micro x model.seq_len x model.moe.top_k = " << rows
                                      << " routed rows per MoE layer exceed the 2^31 a rank indexes; hint: a smaller "
                                      << "batch.micro or parallel.ep";
  }
  // The largest buffers a rank allocates, before the planner's estimate says whether they fit.
  check.fits_int64({{"model.vocab_size", m.vocab_size}, {"model.d_model", m.d_model}}, 16,
                   "embedding's weights, "
                   "gradients and AdamW moments");
  check.fits_int64({{"model.layers", m.layers}, {"model.d_model", m.d_model}, {"model.ffn_dim", m.ffn_dim}}, 48,
                   "feed-forward layers' weights, gradients and AdamW moments");
  check.fits_int64({{"model.layers", m.layers}, {"model.d_model", m.d_model}, {"model.d_model", m.d_model}}, 64,
                   "attention layers' weights, gradients and AdamW moments");
  check.fits_int64({{"batch.micro", b.micro}, {"model.seq_len", m.seq_len}, {"model.vocab_size", m.vocab_size}}, 4,
                   "logits of a micro-batch");
  check.fits_int64(
      {{"batch.micro", b.micro}, {"model.heads", m.heads}, {"model.seq_len", m.seq_len}, {"model.seq_len", m.seq_len}},
      4, "attention scores of a micro-batch");
  check.fits_int64({{"batch.micro", b.micro},
                    {"model.seq_len", m.seq_len},
                    {"model.layers", m.layers},
                    {"model.ffn_dim", m.ffn_dim}},
                   16, "activations of a micro-batch");
  check.fits_int64({{"batch.global", b.global}, {"model.seq_len", m.seq_len}}, 4, "tokens of a step");
  TESSEL_CHECK(b.global % b.micro == 0)
      << check.at({"batch.global", "batch.micro"}) << "batch.global (" << b.global
      << ") must be divisible by batch.micro (" << b.micro << "); e.g. batch.global: " << (b.global / b.micro) * b.micro
      << " or " << (b.global / b.micro + 1) * b.micro
      << ". (dp is not known until launch; then batch.global must also be divisible by "
      << "dp x batch.micro)";
  if (!b.shares.empty()) {
    int64_t micro_batches = 0;
    for (int64_t n : b.shares) micro_batches += std::min<int64_t>(n, kMaxBatch);
    TESSEL_CHECK(micro_batches * b.micro == b.global)
        << check.at({"batch.shares", "batch.global", "batch.micro"}) << "batch.shares lists " << micro_batches
        << " micro-batches of batch.micro (" << b.micro << ") = " << micro_batches * b.micro
        << " sequences, but batch.global is " << b.global << "; hint: the shares are each data-parallel replica's "
        << "micro-batches per step, adding up to batch.global / batch.micro = " << b.global / b.micro;
    TESSEL_CHECK(c.parallel.dp == 0 || static_cast<int64_t>(b.shares.size()) == c.parallel.dp)
        << check.at({"batch.shares", "parallel.dp"}) << "batch.shares lists " << b.shares.size()
        << " data-parallel replicas, but parallel.dp is " << c.parallel.dp << "; hint: one share per replica";
  }

  const OptimConfig& o = c.optim;
  check.positive("optim.lr", o.lr);
  check.non_negative("optim.min_lr", o.min_lr);
  TESSEL_CHECK(o.min_lr <= o.lr) << check.at({"optim.min_lr", "optim.lr"}) << "optim.min_lr (" << o.min_lr
                                 << ") must not exceed optim.lr (" << o.lr
                                 << "); hint: min_lr is the floor the schedule decays to";
  check.fraction("optim.beta1", o.beta1);
  check.fraction("optim.beta2", o.beta2);
  check.positive("optim.eps", o.eps);
  check.non_negative("optim.weight_decay", o.weight_decay);
  check.non_negative("optim.grad_clip", o.grad_clip);
  check.at_least("optim.warmup_steps", o.warmup_steps, 0);
  check.at_least("optim.decay_steps", o.decay_steps, 0, " (0 derives it from run.steps)");
  check.at_least("optim.max_skipped_steps", o.max_skipped_steps, 0);
  TESSEL_CHECK(o.warmup_steps <= run.steps)
      << check.at({"optim.warmup_steps", "run.steps"}) << "optim.warmup_steps (" << o.warmup_steps
      << ") must not exceed run.steps (" << run.steps << "); hint: lower warmup_steps or raise run.steps";
  TESSEL_CHECK(o.schedule != LrSchedule::kWsd || o.warmup_steps + o.decay_steps <= run.steps)
      << check.at({"optim.decay_steps", "optim.warmup_steps", "run.steps"}) << "optim.warmup_steps (" << o.warmup_steps
      << ") + optim.decay_steps (" << o.decay_steps << ") must not exceed run.steps (" << run.steps
      << ") for schedule 'wsd'";

  for (size_t i = 0; i < c.data.train.size(); ++i) {
    const DataSource& source = c.data.train[i];
    const std::string item = "data.train[" + std::to_string(i) + "]";
    TESSEL_CHECK(!source.path.empty()) << check.at({item + ".path", "data.train"}) << item << ".path must not be empty";
    if (!source.weight) continue;
    TESSEL_CHECK(std::isfinite(*source.weight) && *source.weight > 0)
        << check.at({item + ".weight", "data.train"}) << item << ".weight must be a positive number, "
        << "found " << *source.weight << " (path '" << source.path << "')";
  }
  // Weights are relative to each other: either every dataset has one or none does (then each
  // weighs its tokens).
  for (size_t i = 1; i < c.data.train.size(); ++i) {
    const std::string item = "data.train[" + std::to_string(i) + "]";
    TESSEL_CHECK(c.data.train[i].weight.has_value() == c.data.train[0].weight.has_value())
        << check.at({item, "data.train"}) << "data.train[0] " << (c.data.train[0].weight ? "has" : "has no")
        << " weight but " << item << " ('" << c.data.train[i].path << "') "
        << (c.data.train[i].weight ? "has one" : "has none")
        << "; hint: give every dataset a weight, or none (each then weighs its number of tokens)";
  }

  check.at_least("checkpoint.every", c.checkpoint.every, 0, " (0 saves only at the end)");
  check.at_least("checkpoint.keep", c.checkpoint.keep, 1);
}

}  // namespace tessel
