#include "train/resume_check.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "optim/lr_schedule.h"

namespace tessel {
namespace {

// Collects "key: old → new" lines.
class Differences {
 public:
  template <typename T>
  void compare(const std::string& key, const T& old_value, const T& new_value) {
    if (old_value == new_value) return;
    std::ostringstream line;
    line << key << ": " << old_value << " → " << new_value;
    lines_.push_back(line.str());
  }
  void add(std::string line) { lines_.push_back(std::move(line)); }
  std::vector<std::string> take() { return std::move(lines_); }

 private:
  std::vector<std::string> lines_;
};

// The first optimizer step at which the two schedules give different learning rates, or -1.
// Only the steps still to come matter: from `from_step` to the end of the new run.
int64_t first_schedule_difference(const Config& saved, const Config& now, int64_t from_step, double* old_lr,
                                  double* new_lr) {
  for (int64_t step = from_step; step < now.run.steps; ++step) {
    *old_lr = learning_rate(saved.optim, saved.run.steps, step);
    *new_lr = learning_rate(now.optim, now.run.steps, step);
    if (std::abs(*old_lr - *new_lr) > 1e-12 * std::max(std::abs(*old_lr), std::abs(*new_lr))) return step;
  }
  return -1;
}

}  // namespace

std::vector<std::string> model_changes(const ModelConfig& saved, const ModelConfig& now) {
  Differences d;
  d.compare("model.vocab_size", saved.vocab_size, now.vocab_size);
  d.compare("model.layers", saved.layers, now.layers);
  d.compare("model.d_model", saved.d_model, now.d_model);
  d.compare("model.heads", saved.heads, now.heads);
  d.compare("model.kv_heads", saved.kv_heads, now.kv_heads);
  d.compare("model.ffn_dim", saved.ffn_dim, now.ffn_dim);
  d.compare("model.norm", saved.norm, now.norm);
  d.compare("model.norm_eps", saved.norm_eps, now.norm_eps);
  d.compare("model.activation", saved.activation, now.activation);
  d.compare("model.position", saved.position, now.position);
  if (now.position == Position::kRope) d.compare("model.rope_theta", saved.rope_theta, now.rope_theta);
  d.compare("model.bias", saved.bias, now.bias);
  d.compare("model.tie_embeddings", saved.tie_embeddings, now.tie_embeddings);
  d.compare("model.cla_share", saved.cla_share, now.cla_share);
  const MoeConfig &a = saved.moe, &b = now.moe;
  d.compare("model.moe.experts", a.experts, b.experts);
  if (b.enabled()) {
    d.compare("model.moe.top_k", a.top_k, b.top_k);
    d.compare("model.moe.shared_experts", a.shared_experts, b.shared_experts);
    d.compare("model.moe.expert_ffn_dim", a.expert_width(saved.ffn_dim), b.expert_width(now.ffn_dim));
    d.compare("model.moe.shared_ffn_dim", a.shared_width(saved.ffn_dim), b.shared_width(now.ffn_dim));
    d.compare("model.moe.shared_gate", a.shared_gate, b.shared_gate);
    d.compare("model.moe.router", a.router, b.router);
    d.compare("model.moe.norm_topk", a.norm_topk, b.norm_topk);
    d.compare("model.moe.balance", a.balance, b.balance);
    d.compare("model.moe.every", a.every, b.every);
    d.compare("model.moe.first_dense", a.first_dense, b.first_dense);
  }
  return d.take();
}

std::vector<std::string> training_changes(const Config& saved, const Config& now, int64_t from_step) {
  Differences d;
  double old_lr = 0, new_lr = 0;
  const int64_t step = first_schedule_difference(saved, now, from_step, &old_lr, &new_lr);
  if (step >= 0) {
    // The raw settings behind the different curve, for the user to recognise.
    Differences raw;
    raw.compare("run.steps", saved.run.steps, now.run.steps);
    raw.compare("optim.lr", saved.optim.lr, now.optim.lr);
    raw.compare("optim.min_lr", saved.optim.min_lr, now.optim.min_lr);
    raw.compare("optim.schedule", saved.optim.schedule, now.optim.schedule);
    raw.compare("optim.warmup_steps", saved.optim.warmup_steps, now.optim.warmup_steps);
    raw.compare("optim.decay_steps", saved.optim.decay_steps, now.optim.decay_steps);
    std::ostringstream line;
    line << "the learning-rate schedule (from step " << step << ": " << old_lr << " → " << new_lr << "; ";
    const std::vector<std::string> keys = raw.take();
    for (size_t i = 0; i < keys.size(); ++i) line << (i ? ", " : "") << keys[i];
    line << ")";
    d.add(line.str());
  }
  d.compare("optim.weight_decay", saved.optim.weight_decay, now.optim.weight_decay);
  d.compare("optim.beta1", saved.optim.beta1, now.optim.beta1);
  d.compare("optim.beta2", saved.optim.beta2, now.optim.beta2);
  d.compare("optim.eps", saved.optim.eps, now.optim.eps);
  d.compare("optim.grad_clip", saved.optim.grad_clip, now.optim.grad_clip);
  d.compare("run.seed", saved.run.seed, now.run.seed);
  d.compare("model.seq_len", saved.model.seq_len, now.model.seq_len);
  d.compare("batch.global", saved.batch.global, now.batch.global);
  d.compare("precision.compute", saved.precision.compute, now.precision.compute);
  bool weights = saved.data.train.size() == now.data.train.size();
  for (size_t i = 0; weights && i < now.data.train.size(); ++i) {
    weights = saved.data.train[i].path == now.data.train[i].path;
  }
  if (weights) {
    for (size_t i = 0; i < now.data.train.size(); ++i) {
      auto weight = [](const DataSource& s) { return s.weight ? std::to_string(*s.weight) : std::string("by size"); };
      d.compare("data.train[" + std::to_string(i) + "].weight", weight(saved.data.train[i]), weight(now.data.train[i]));
    }
  }
  return d.take();
}

std::vector<std::string> data_changes(const std::vector<DatasetFingerprint>& saved,
                                      const std::vector<DatasetFingerprint>& now) {
  std::vector<std::string> lines;
  auto describe = [](const DatasetFingerprint& f) {
    return f.path + " (" + std::to_string(f.bytes) + " bytes, fingerprint " + f.hash + ")";
  };
  for (const std::string role : {"train", "val"}) {
    std::vector<const DatasetFingerprint*> before, after;
    for (const DatasetFingerprint& f : saved) {
      if (f.role == role) before.push_back(&f);
    }
    for (const DatasetFingerprint& f : now) {
      if (f.role == role) after.push_back(&f);
    }
    const size_t n = std::max(before.size(), after.size());
    for (size_t i = 0; i < n; ++i) {
      const DatasetFingerprint* b = i < before.size() ? before[i] : nullptr;
      const DatasetFingerprint* a = i < after.size() ? after[i] : nullptr;
      if (b != nullptr && a != nullptr && b->path == a->path && b->bytes == a->bytes && b->hash == a->hash) continue;
      lines.push_back(role + " dataset " + std::to_string(i) + ": " + (b ? describe(*b) : "none") + " → " +
                      (a ? describe(*a) : "none"));
    }
  }
  return lines;
}

}  // namespace tessel
