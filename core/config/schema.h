// The config schema: the one place that lists every section and key of a Tessel config, with its
// type and, for enumerations, its valid values.
//
// visit_config walks a Config (const or not) and calls the visitor once per key, in the order of
// the emitted YAML. The parser, the YAML emitter, the choice checker of validate_config and
// schema_keys() are all visitors, so a key added here is parsed, emitted, checked and suggested
// without a second list to keep in step. Internal to core/config*.cc and their tests.
//
// A visitor provides:
//   section(name, body)              body() visits the section's keys
//   subsection(name, body)           a key of the section that is itself a map of keys
//                                    (model.moe); its keys are "section.name.key"
//   field(name, T&)                  T is std::string, int64_t, uint64_t, int, double or bool
//   choice(name, E&)                 an enum of core/config/values.h, written by its name
//   preset(name, ModelConfig&)       model.arch: choosing it resets the knobs it presets
//   dp(name, int64_t&)               "auto" (stored as 0) or a positive integer
//   loss_scale(name, double&)        "dynamic" (stored as 0) or a positive number
//   resume(name, CheckpointConfig&)  "auto", "none" or a path
//   layer_split(name, LayerSplit&)   a PipelineSplit's name, or a list of positive layer counts
//   counts(name, std::vector<int64_t>&)  a list of positive integers ([] for none)
//   sources(name, std::vector<DataSource>&)
// Stateless; safe from any thread.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/config/config.h"

namespace tessel {

template <typename Visitor, typename ConfigT>
void visit_config(Visitor& v, ConfigT& c) {
  v.section("run", [&] {
    v.field("name", c.run.name);
    v.field("out_dir", c.run.out_dir);
    v.field("seed", c.run.seed);
    v.field("steps", c.run.steps);
    v.field("log_every", c.run.log_every);
    v.field("eval_every", c.run.eval_every);
    v.field("eval_batches", c.run.eval_batches);
    v.choice("device", c.run.device);
    v.choice("attention", c.run.attention);
    v.field("threads", c.run.threads);
    v.field("exit_after_steps", c.run.exit_after_steps);
    v.field("exit_after_minutes", c.run.exit_after_minutes);
  });
  v.section("model", [&] {
    // First, so that the preset is in place before any explicitly set knob is parsed.
    v.preset("arch", c.model);
    v.field("vocab_size", c.model.vocab_size);
    v.field("seq_len", c.model.seq_len);
    v.field("layers", c.model.layers);
    v.field("d_model", c.model.d_model);
    v.field("heads", c.model.heads);
    v.field("kv_heads", c.model.kv_heads);
    v.field("ffn_dim", c.model.ffn_dim);
    v.choice("norm", c.model.norm);
    v.field("norm_eps", c.model.norm_eps);
    v.choice("activation", c.model.activation);
    v.choice("position", c.model.position);
    v.field("rope_theta", c.model.rope_theta);
    v.field("bias", c.model.bias);
    v.field("tie_embeddings", c.model.tie_embeddings);
    v.field("init_std", c.model.init_std);
    v.subsection("moe", [&] {
      v.field("experts", c.model.moe.experts);
      v.field("top_k", c.model.moe.top_k);
      v.field("shared_experts", c.model.moe.shared_experts);
      v.field("expert_ffn_dim", c.model.moe.expert_ffn_dim);
      v.field("shared_ffn_dim", c.model.moe.shared_ffn_dim);
      v.field("shared_gate", c.model.moe.shared_gate);
      v.choice("router", c.model.moe.router);
      v.field("norm_topk", c.model.moe.norm_topk);
      v.field("capacity_factor", c.model.moe.capacity_factor);
      v.choice("overflow", c.model.moe.overflow);
      v.choice("balance", c.model.moe.balance);
      v.field("aux_loss_coeff", c.model.moe.aux_loss_coeff);
      v.field("bias_update_rate", c.model.moe.bias_update_rate);
      v.field("every", c.model.moe.every);
      v.field("first_dense", c.model.moe.first_dense);
    });
    v.field("cla_share", c.model.cla_share);
  });
  v.section("parallel", [&] {
    v.field("tp", c.parallel.tp);
    v.field("pp", c.parallel.pp);
    v.dp("dp", c.parallel.dp);
    v.field("ep", c.parallel.ep);
    v.field("sequence_parallel", c.parallel.sequence_parallel);
    v.choice("schedule", c.parallel.schedule);
    v.field("virtual_stages", c.parallel.virtual_stages);
    v.layer_split("pipeline_split", c.parallel.pipeline_split);
    v.choice("zero", c.parallel.zero);
    v.choice("recompute", c.parallel.recompute);
    v.field("bucket_mb", c.parallel.bucket_mb);
    v.field("overlap_grad_reduce", c.parallel.overlap_grad_reduce);
    v.field("order", c.parallel.order);
    v.field("timeout_s", c.parallel.timeout_s);
    v.choice("device_comm", c.parallel.device_comm);
  });
  v.section("batch", [&] {
    v.field("global", c.batch.global);
    v.field("micro", c.batch.micro);
    v.counts("shares", c.batch.shares);
  });
  v.section("precision", [&] {
    v.choice("compute", c.precision.compute);
    v.loss_scale("loss_scale", c.precision.loss_scale);
  });
  v.section("optim", [&] {
    v.field("lr", c.optim.lr);
    v.field("min_lr", c.optim.min_lr);
    v.choice("schedule", c.optim.schedule);
    v.field("warmup_steps", c.optim.warmup_steps);
    v.field("decay_steps", c.optim.decay_steps);
    v.field("beta1", c.optim.beta1);
    v.field("beta2", c.optim.beta2);
    v.field("eps", c.optim.eps);
    v.field("weight_decay", c.optim.weight_decay);
    v.field("grad_clip", c.optim.grad_clip);
    v.field("max_skipped_steps", c.optim.max_skipped_steps);
  });
  v.section("data", [&] {
    v.sources("train", c.data.train);
    v.field("val", c.data.val);
    v.choice("tokenizer", c.data.tokenizer);
    v.field("tokenizer_dir", c.data.tokenizer_dir);
  });
  v.section("checkpoint", [&] {
    v.field("dir", c.checkpoint.dir);
    v.field("every", c.checkpoint.every);
    v.field("keep", c.checkpoint.keep);
    v.field("async", c.checkpoint.async);
    v.field("allow_data_change", c.checkpoint.allow_data_change);
    v.resume("resume", c.checkpoint);
  });
  v.section("logging", [&] {
    v.field("jsonl", c.logging.jsonl);
    v.field("tensorboard", c.logging.tensorboard);
  });
}

// The keys of a `data.train` entry written as a map.
inline constexpr const char* kDataSourceKeys[] = {"path", "weight"};

// Section names in schema order, and each section's keys in schema order.
struct SchemaKeys {
  std::vector<std::string> sections;
  std::map<std::string, std::vector<std::string>> keys;
};

// Visits a default Config to list the schema's keys.
SchemaKeys schema_keys();

}  // namespace tessel
