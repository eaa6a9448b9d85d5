#include "launch/commands.h"

#include "launch/bench/checkpoint.h"
#include "launch/bench/kernels.h"
#include "train/rank_model.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>

#include <spdlog/spdlog.h>

#include "core/checkpoint/checkpoint.h"
#include "core/io/file.h"
#include "core/io/json.h"
#include "core/logging.h"
#include "core/measure.h"
#include "core/model/init_rng.h"
#include "data/tokenizer.h"
#include "launch/cli_args.h"
#include "train/stop_signal.h"
#include "train/train_step.h"
#include "train/trainer.h"
#include "train/world.h"
#include "parallel/topology.h"

namespace tessel {
namespace {

// The config a checkpoint was trained with, the model it holds loaded into `model`.
Config checkpoint_config(const std::string& step_dir) {
  const CheckpointInfo info = read_checkpoint_info(step_dir);
  return parse_config(info.config_yaml, step_dir + "/manifest.pb[config]");
}

// The tokenizer the checkpoint was trained with, checked against the model's vocabulary.
std::unique_ptr<Tokenizer> checkpoint_tokenizer(const Config& c) {
  std::unique_ptr<Tokenizer> t = make_tokenizer(c.data.tokenizer, c.data.tokenizer_dir);
  TESSEL_CHECK(c.model.vocab_size >= t->vocab_size())
      << "model.vocab_size=" << c.model.vocab_size << " cannot hold the " << t->name()
      << " tokenizer's " << t->vocab_size() << " ids; hint: the checkpoint's data.tokenizer does not "
      << "match its model";
  return t;
}

}  // namespace

int run_train_command(const std::vector<std::string>& args) {
  const ParsedArgs a = parse_args(args, "tessel train", {});
  TESSEL_CHECK(!a.positional.empty()) << "usage: tessel train CONFIG [--set key=value ...]";
  TESSEL_CHECK(a.positional.size() == 1)
      << "tessel train takes one CONFIG, got '" << a.positional[0] << "' and '" << a.positional[1]
      << "'; hint: each override after --set is key=value, e.g. --set model.layers=4";
  const Config config = load_config(a.positional[0], a.overrides);
  World world(config.parallel.timeout_s);
  const Topology topology = Topology::from_config(config.parallel, world.comm().size(), world.comm().rank());
  // Rank 0 tells the story; the others speak up only for warnings and errors.
  init_logging(world.comm().rank(), world.distributed() ? topology.describe() : "",
               world.comm().rank() == 0 ? spdlog::level::info : spdlog::level::warn);
  spdlog::info("config {} resolved:\n{}", config.source, to_yaml(config));
  const int threads = configure_threads(config.run.threads, world.identity().local_world_size);
  if (world.distributed()) {
    spdlog::info("{} ranks ({} per node, {} threads each), grid {}", world.comm().size(),
                 world.identity().local_world_size, threads, topology.describe());
  }
  std::unique_ptr<Trainer> trainer;
  StopSignal stop;  // SIGTERM/SIGINT/SIGUSR1: checkpoint after the current step, then exit 0
  return world.run_or_abort(
      [&] {
        trainer = std::make_unique<Trainer>(config, world.comm(), topology);
        const TrainSummary s = trainer->run([&] { return stop.requested(); });
        if (s.losses.empty()) return 0;  // nothing to train: run() said why
        spdlog::info("loss {:.4f} -> {:.4f} over steps {}..{}; checkpoint {}", s.first_loss, s.last_loss,
                     s.first_step + 1, s.last_step, s.checkpoint.empty() ? "(none)" : s.checkpoint);
        return 0;
      },
      [&] { return trainer ? trainer->flight_records() : world.comm().recorder().dump("  "); });
}

int run_generate_command(const std::vector<std::string>& args) {
  const ParsedArgs a = parse_args(args, "tessel generate",
                                  {"--prompt", "--tokens", "--temperature", "--seed", "--top-k", "--threads"}, {}, false);
  TESSEL_CHECK(a.positional.size() == 1)
      << "usage: tessel generate CHECKPOINT --prompt TEXT [--tokens N] [--temperature T] [--seed S] [--top-k K]";
  const std::string dir = resolve_checkpoint(a.positional[0]);
  const Config config = checkpoint_config(dir);
  std::unique_ptr<Tokenizer> tokenizer = checkpoint_tokenizer(config);
  configure_threads(static_cast<int>(a.get_int("--threads", config.run.threads)));
  const int64_t n_new = a.get_int("--tokens", 200);
  const double temperature = a.get_double("--temperature", 0.8);
  const uint64_t seed = static_cast<uint64_t>(a.get_int("--seed", 0));
  const int64_t top_k = a.get_int("--top-k", 0);
  TESSEL_CHECK(n_new >= 0 && temperature >= 0) << "--tokens and --temperature must be non-negative";

  std::vector<int32_t> ids = tokenizer->encode(a.get("--prompt", ""));
  if (ids.empty()) ids.push_back(tokenizer->end_of_text());  // an empty prompt starts a document
  // The model only needs as many positions as the text will have (each new token costs a
  // forward pass over the context), up to the model's seq_len, past which the context slides.
  // Ids past the tokenizer's vocabulary (a padded model.vocab_size) are never sampled.
  const int64_t V = std::min<int64_t>(config.model.vocab_size, tokenizer->vocab_size());
  const int64_t T = std::min<int64_t>(config.model.seq_len, static_cast<int64_t>(ids.size()) + n_new);
  Transformer model(config.model, 1, T);
  load_checkpoint(dir, model.parameters(), nullptr, nullptr);
  const uint64_t stream = fnv1a64("generate");
  Tensor tokens = Tensor::zeros({1, T}, DType::I32);
  std::vector<int32_t> generated;
  for (int64_t i = 0; i < n_new; ++i) {
    // The last T tokens are the context; positions after it are zeros that causal attention
    // never lets the context see.
    const size_t ctx = std::min<size_t>(ids.size(), static_cast<size_t>(T));
    std::copy(ids.end() - static_cast<int64_t>(ctx), ids.end(), tokens.data<int32_t>());
    std::vector<float> logits = model.logits_at(tokens, static_cast<int64_t>(ctx) - 1);
    logits.resize(static_cast<size_t>(V));
    int32_t next = 0;
    if (temperature == 0) {
      next = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    } else {
      float cutoff = -INFINITY;
      if (top_k > 0 && top_k < V) {
        std::vector<float> sorted = logits;
        std::nth_element(sorted.begin(), sorted.begin() + (top_k - 1), sorted.end(), std::greater<float>());
        cutoff = sorted[static_cast<size_t>(top_k - 1)];
      }
      const float m = *std::max_element(logits.begin(), logits.end());
      double sum = 0;
      std::vector<double> p(static_cast<size_t>(V));
      for (int64_t v = 0; v < V; ++v) {
        p[static_cast<size_t>(v)] = logits[static_cast<size_t>(v)] < cutoff ? 0.0 : std::exp((logits[static_cast<size_t>(v)] - m) / temperature);
        sum += p[static_cast<size_t>(v)];
      }
      double u = uniform_at(seed, stream, static_cast<uint64_t>(i)) * sum;
      for (next = 0; next < V - 1; ++next) {
        u -= p[static_cast<size_t>(next)];
        if (u < 0) break;
      }
    }
    if (next == tokenizer->end_of_text()) {
      spdlog::info("generation stopped at end-of-text after {} of {} tokens", i, n_new);
      break;
    }
    ids.push_back(next);
    generated.push_back(next);
  }
  std::cout << a.get("--prompt", "") << tokenizer->decode(generated) << std::endl;
  return 0;
}

int run_eval_command(const std::vector<std::string>& args) {
  const ParsedArgs a = parse_args(args, "tessel eval", {"--data", "--batches", "--threads"}, {}, false);
  TESSEL_CHECK(a.positional.size() == 1) << "usage: tessel eval CHECKPOINT [--data PREFIX] [--batches N]";
  const std::string dir = resolve_checkpoint(a.positional[0]);
  Config config = checkpoint_config(dir);
  if (a.has("--data")) config.data.val = a.get("--data", "");
  TESSEL_CHECK(!config.data.val.empty())
      << "the checkpoint's config has no data.val; hint: pass --data PREFIX";
  configure_threads(static_cast<int>(a.get_int("--threads", config.run.threads)));
  const int64_t batches = a.get_int("--batches", config.run.eval_batches);
  TESSEL_CHECK(batches > 0) << "--batches must be positive, got " << batches;
  const int64_t B = config.batch.micro, T = config.model.seq_len;
  Transformer model(config.model, B, T);
  const CheckpointInfo info = load_checkpoint(dir, model.parameters(), nullptr, nullptr);
  std::unique_ptr<Sampler> sampler;
  try {
    sampler = make_sampler({{config.data.val, 1.0}}, T, config.run.seed, config.model.vocab_size);
  } catch (const Error& e) {
    TESSEL_FAIL() << e.message() << (a.has("--data") ? "" : " (data.val from the checkpoint's config; "
                                      "relative paths are relative to the working directory; hint: pass --data PREFIX)");
  }
  const int64_t G = config.batch.global;  // batches of batch.global sequences, as in training
  if (static_cast<uint64_t>(batches * G) > sampler->samples_per_epoch()) {
    spdlog::warn("--batches {} x {} sequences is more than the {} sequences of {}: some are read more than once",
                 batches, G, sampler->samples_per_epoch(), config.data.val);
  }
  const double loss = mean_eval_loss(model, *sampler, batches * G);
  std::printf("{\"loss\": %.6f, \"perplexity\": %.4f, \"batches\": %lld, \"tokens\": %lld, \"step\": %lld, \"data\": %s}\n",
              loss, std::exp(loss), static_cast<long long>(batches), static_cast<long long>(batches * G * T),
              static_cast<long long>(info.state.step), json_quote(config.data.val).c_str());
  return 0;
}

namespace {

// `tessel bench tokenizer`: encoding throughput over documents of text (NUL-separated in the
// input, or one document per file), after one untimed warm-up pass.
int run_bench_tokenizer(const std::vector<std::string>& args) {
  const ParsedArgs a = parse_args(args, "tessel bench tokenizer", {"--tokenizer", "--tokenizer-dir", "--repeat", "--workers"}, {}, false);
  TESSEL_CHECK(!a.positional.empty())
      << "usage: tessel bench tokenizer FILE... [--tokenizer gpt2|bytes] [--tokenizer-dir DIR] [--repeat N]";
  std::vector<std::string> docs;
  int64_t bytes = 0;
  for (const std::string& path : a.positional) {
    const std::string text = read_file(path);
    size_t start = 0;
    for (size_t nul; (nul = text.find('\0', start)) != std::string::npos; start = nul + 1) docs.push_back(text.substr(start, nul - start));
    docs.push_back(text.substr(start));
    bytes += static_cast<int64_t>(text.size());
  }
  const int64_t repeat = a.get_int("--repeat", 3);
  const int workers = static_cast<int>(a.get_int("--workers", 1));
  TESSEL_CHECK(workers >= 1 && repeat >= 1) << "--workers and --repeat must be at least 1";
  std::vector<std::vector<int32_t>> ids(docs.size());
  std::vector<double> times;
  std::string name;
  for (int64_t r = 0; r <= repeat; ++r) {
    // Fresh tokenizers per timed pass, so their piece caches start empty as in a real run; the
    // vocabulary load is not timed. Documents are shared out as `data prepare --workers` does.
    std::vector<std::unique_ptr<Tokenizer>> tokenizers =
        make_tokenizers(a.get("--tokenizer", "gpt2"), a.get("--tokenizer-dir", ""), workers);
    name = tokenizers[0]->name();
    const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel for num_threads(workers) schedule(dynamic, 1)
    for (size_t d = 0; d < docs.size(); ++d) {
      ids[d].clear();
      tokenizers[static_cast<size_t>(omp_get_thread_num())]->encode_append(docs[d], &ids[d]);
    }
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (r > 0) times.push_back(dt);
  }
  size_t total_tokens = 0;
  for (const auto& v : ids) total_tokens += v.size();
  std::sort(times.begin(), times.end());
  const double median = times[times.size() / 2];
  std::printf("{\"bench\": \"tokenizer\", \"tokenizer\": \"%s\", \"workers\": %d, \"documents\": %zu, \"bytes\": %lld, "
              "\"tokens\": %zu, \"seconds\": %.4f, \"mb_per_s\": %.3f}\n",
              name.c_str(), workers, docs.size(), static_cast<long long>(bytes), total_tokens, median,
              static_cast<double>(bytes) / median / 1e6);
  return 0;
}

// `tessel bench comm`: the world's all-reduce (f32 sum) time and bandwidth for message sizes
// from 4 KiB up, one JSON line each from rank 0. Bus bandwidth as nccl-tests define it:
// algbw · 2(n-1)/n, comparable across rank counts.
int run_bench_comm(const std::vector<std::string>& args) {
  const ParsedArgs a = parse_args(args, "tessel bench comm", {"--max-mb", "--iters"}, {}, false);
  TESSEL_CHECK(a.positional.empty()) << "usage: tessel bench comm [--max-mb M] [--iters N] (run it under mpirun)";
  const double max_mb = a.get_double("--max-mb", 64);
  const int64_t iters = a.get_int("--iters", 20);
  TESSEL_CHECK(max_mb > 0 && iters > 0) << "--max-mb and --iters must be positive";
  World world(0);
  return world.run_or_abort([&] {
    Communicator& c = world.comm();
    for (int64_t bytes = 4096; bytes <= static_cast<int64_t>(max_mb * (1 << 20)); bytes *= 4) {
      Tensor x = Tensor::zeros({bytes / 4}, DType::F32);
      c.all_reduce(x, ReduceOp::kSum);  // warm-up
      std::vector<double> times;
      for (int64_t i = 0; i < iters; ++i) {
        c.barrier();
        const auto t0 = std::chrono::steady_clock::now();
        c.all_reduce(x, ReduceOp::kSum);
        times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
      std::sort(times.begin(), times.end());
      const double t = times[times.size() / 2];
      const double algbw = static_cast<double>(bytes) / t / 1e9;
      const int n = c.size();
      if (c.rank() == 0) {
        std::printf("{\"bench\": \"comm\", \"op\": \"all_reduce\", \"backend\": \"%s\", \"ranks\": %d, \"bytes\": %lld, "
                    "\"ms\": %.4f, \"algbw_gbs\": %.3f, \"busbw_gbs\": %.3f}\n",
                    world.distributed() ? "mpi" : "single", n, static_cast<long long>(bytes), t * 1e3, algbw,
                    n > 1 ? algbw * 2.0 * (n - 1) / n : 0.0);
        std::fflush(stdout);
      }
    }
    return 0;
  });
}

}  // namespace

int run_bench_command(const std::vector<std::string>& args) {
  if (!args.empty() && args[0] == "tokenizer") {
    return run_bench_tokenizer(std::vector<std::string>(args.begin() + 1, args.end()));
  }
  if (!args.empty() && args[0] == "comm") return run_bench_comm(std::vector<std::string>(args.begin() + 1, args.end()));
  if (!args.empty() && args[0] == "checkpoint") {
    return run_bench_checkpoint(std::vector<std::string>(args.begin() + 1, args.end()));
  }
  if (!args.empty() && args[0] == "kernels") {
    return run_bench_kernels(std::vector<std::string>(args.begin() + 1, args.end()));
  }
  TESSEL_CHECK(!args.empty() && args[0] == "step")
      << "usage: tessel bench step CONFIG [--set key=value ...] [--steps N] [--warmup W]\n"
      << "       tessel bench tokenizer FILE... [--tokenizer gpt2|bytes] [--tokenizer-dir DIR]\n"
      << "       tessel bench comm [--max-mb M] [--iters N]   (under mpirun)\n"
      << "       tessel bench checkpoint CONFIG [--set key=value ...] [--saves N] [--dir DIR]\n"
      << "       tessel bench kernels CONFIG [--set key=value ...] [--dtype bf16|fp32] [--iters N]   (CUDA)";
  const ParsedArgs a = parse_args(std::vector<std::string>(args.begin() + 1, args.end()),
                                  "tessel bench step", {"--steps", "--warmup"});
  TESSEL_CHECK(a.positional.size() == 1) << "usage: tessel bench step CONFIG [--set ...] [--steps N] [--warmup W]";
  Config config = load_config(a.positional[0], a.overrides);
  const int64_t steps = a.get_int("--steps", 5), warmup = a.get_int("--warmup", 2);
  TESSEL_CHECK(steps > 0 && warmup >= 0) << "--steps must be positive and --warmup non-negative";
  // Under mpirun or tessel launch the ranks form the config's tp x pp x dp grid; rank 0 reports.
  World world(config.parallel.timeout_s);
  return world.run_or_abort([&] {
    const Topology topology = Topology::from_config(config.parallel, world.comm().size(), world.comm().rank());
    const int threads = configure_threads(config.run.threads, world.identity().local_world_size);
    const int64_t T = config.model.seq_len;
    RankModel r = RankModel::build(config, world.comm(), topology);
    Transformer& model = *r.model;
    TrainStep& step = *r.step;
    const TrainStep::BatchFn fill = synthetic_batches(config);
    std::vector<double> times, waits, bubbles;
    std::vector<double> stage_busy(static_cast<size_t>(r.pp->size()), 0.0);  // summed over timed steps
    StepResult result;
    for (int64_t i = 0; i < warmup + steps; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      result = step.run(i, fill);
      if (r.device) r.device->synchronize();  // the step's queued tail (AdamW) belongs to its time
      const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (i >= warmup) {
        times.push_back(dt);
        waits.push_back(result.comm_wait_s);
        if (r.pipeline) {
          // The pipeline bubble as Megatron counts it: the stages' idle time over their busy
          // time, idle = stages x the slowest stage's schedule time - busy.
          std::vector<double> busy(stage_busy.size(), 0.0);
          busy[static_cast<size_t>(r.pp->rank())] = r.pipeline->busy_s();
          r.pp->all_reduce_doubles(busy.data(), static_cast<int>(busy.size()), ReduceOp::kSum);
          double span = r.pipeline->step_s(), total = 0;
          r.pp->all_reduce_doubles(&span, 1, ReduceOp::kMax);
          for (size_t k = 0; k < busy.size(); ++k) {
            stage_busy[k] += busy[k];
            total += busy[k];
          }
          bubbles.push_back((r.pp->size() * span - total) / total);
        }
      }
    }
    const double step_s = median(times);
    if (world.comm().rank() != 0) return 0;
    const double tokens = static_cast<double>(config.batch.global * T);
    std::string pipeline = "";
    if (r.pipeline) {
      const int pp = r.pp->size(), v = static_cast<int>(config.parallel.virtual_stages), m = r.pipeline->micro_batches();
      // Each stage's compute per step: unequal stages (the head on the last) add to the bubble.
      std::string busy;
      for (double b : stage_busy) busy += fmt::format("{}{:.1f}", busy.empty() ? "" : ", ", b / static_cast<double>(steps) * 1000);
      pipeline = fmt::format("\"pp\": {}, \"schedule\": \"{}\", \"virtual_stages\": {}, \"micro_batches\": {}, "
                             "\"bubble_measured\": {:.4f}, \"bubble_simulated\": {:.4f}, \"bubble_theory\": {:.4f}, "
                             "\"stage_busy_ms\": [{}], ",
                             pp, config.parallel.schedule, v, m, median(bubbles),
                             r.schedule.bubble_fraction / (1 - r.schedule.bubble_fraction),
                             static_cast<double>(pp - 1) / (m * v), busy);
    }
    // On a device: its name, the compute type and the allocator's peak.
    const std::string device =
        r.device ? fmt::format("\"device\": \"{}\", \"device_name\": {}, \"precision\": \"{}\", "
                               "\"peak_allocated_mib\": {:.1f}, \"peak_reserved_mib\": {:.1f}, ",
                               r.device->device().str(), json_quote(r.device->describe()), config.precision.compute,
                               static_cast<double>(r.device->memory().peak_allocated) / (1 << 20),
                               static_cast<double>(r.device->memory().peak_reserved) / (1 << 20))
                 : std::string("\"device\": \"cpu\", ");
    std::printf("{\"bench\": \"step\", \"config\": %s, %s\"ranks\": %d, \"tp\": %d, %s"
                "\"sequence_parallel\": %s, \"recompute\": \"%s\", \"activation_mib\": %.3f, \"threads\": %d, "
                "\"params\": %lld, \"batch\": %lld, \"seq_len\": %lld, \"zero\": %d, \"ms_per_step\": %.3f, "
                "\"comm_wait_ms\": %.3f, \"tokens_per_s\": %.1f, \"tflops\": %.4f, \"loss\": %.4f, "
                "\"flops_formula\": \"6N+6LTC\"}\n",
                json_quote(config.source).c_str(), device.c_str(), world.comm().size(), r.tp->size(), pipeline.c_str(),
                config.parallel.sequence_parallel && r.tp->size() > 1 ? "true" : "false", config.parallel.recompute.c_str(),
                static_cast<double>(model.activation_bytes()) / (1 << 20), threads,
                static_cast<long long>(model.num_parameters()),
                static_cast<long long>(config.batch.global), static_cast<long long>(T), step.data_parallel().zero(),
                step_s * 1000, median(waits) * 1000, tokens / step_s, model.flops_per_token() * tokens / step_s / 1e12,
                result.loss);
    return 0;
  });
}

}  // namespace tessel
