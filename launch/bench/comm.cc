// `tessel bench comm` (launch/bench/bench.h).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "core/error.h"
#include "core/io/json.h"
#include "launch/bench/bench.h"
#include "launch/cli_args.h"
#include "train/world.h"

namespace tessel {

// The world's all-reduce (f32 sum) time and bandwidth for message sizes
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
        std::printf("%s\n", JsonLine()
                                .add("bench", "comm")
                                .add("op", "all_reduce")
                                .add("backend", world.distributed() ? "mpi" : "single")
                                .add("ranks", n)
                                .add("bytes", bytes)
                                .add("ms", t * 1e3, 4)
                                .add("algbw_gbs", algbw, 3)
                                .add("busbw_gbs", n > 1 ? algbw * 2.0 * (n - 1) / n : 0.0, 3)
                                .str()
                                .c_str());
        std::fflush(stdout);
      }
    }
    return 0;
  });
}

}  // namespace tessel
