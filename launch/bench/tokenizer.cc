// `tessel bench tokenizer` (launch/bench/bench.h).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>

#include "core/error.h"
#include "core/io/file.h"
#include "core/io/json.h"
#include "data/tokenizer.h"
#include "launch/bench/bench.h"
#include "launch/cli_args.h"

namespace tessel {

// Encoding throughput over documents of text (NUL-separated in the
// input, or one document per file), after one untimed warm-up pass.
int run_bench_tokenizer(const std::vector<std::string>& args) {
  const ParsedArgs a = parse_args(args, "tessel bench tokenizer",
                                  {"--tokenizer", "--tokenizer-dir", "--repeat", "--workers"}, {}, false);
  TESSEL_CHECK(!a.positional.empty())
      << "usage: tessel bench tokenizer FILE... [--tokenizer gpt2|bytes] [--tokenizer-dir DIR] [--repeat N]";
  std::vector<std::string> docs;
  int64_t bytes = 0;
  for (const std::string& path : a.positional) {
    const std::string text = read_file(path);
    size_t start = 0;
    for (size_t nul; (nul = text.find('\0', start)) != std::string::npos; start = nul + 1)
      docs.push_back(text.substr(start, nul - start));
    docs.push_back(text.substr(start));
    bytes += static_cast<int64_t>(text.size());
  }
  const int64_t repeat = a.get_int("--repeat", 3);
  const int workers = static_cast<int>(a.get_int("--workers", 1, 1, kMaxThreads));
  TESSEL_CHECK(workers >= 1 && repeat >= 1) << "--workers and --repeat must be at least 1";
  std::vector<std::vector<int32_t>> ids(docs.size());
  std::vector<double> times;
  std::string name;
  for (int64_t r = 0; r <= repeat; ++r) {
    // Fresh tokenizers per timed pass, so their piece caches start empty as in a real run; the
    // vocabulary load is not timed. Documents are shared out as `data prepare --workers` does.
    std::vector<std::unique_ptr<Tokenizer>> tokenizers =
        make_tokenizers(parse_choice<TokenizerKind>(a.get("--tokenizer", "gpt2"), "--tokenizer"),
                        a.get("--tokenizer-dir", ""), workers);
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
  std::printf("%s\n", JsonLine()
                          .add("bench", "tokenizer")
                          .add("tokenizer", name)
                          .add("workers", workers)
                          .add("documents", static_cast<int64_t>(docs.size()))
                          .add("bytes", bytes)
                          .add("tokens", static_cast<int64_t>(total_tokens))
                          .add("seconds", median, 4)
                          .add("mb_per_s", static_cast<double>(bytes) / median / 1e6, 3)
                          .str()
                          .c_str());
  return 0;
}

}  // namespace tessel
