#include "train/environment.h"

#include <cblas.h>
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <thread>

namespace tessel {

void select_blas_kernels(char** argv) {
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr || std::getenv("TESSEL_REEXECED") != nullptr) return;
#if defined(__x86_64__)
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
  if (!avx512) return;
  setenv("OPENBLAS_CORETYPE", "SkylakeX", 1);
  setenv("TESSEL_REEXECED", "1", 1);
  execv("/proc/self/exe", argv);
  // execv only returns on failure: carry on with the kernels OpenBLAS chose.
#else
  (void)argv;
#endif
}

int configure_threads(int threads, int local_ranks) {
  int n = threads;
  if (n <= 0) {
    // OMP_NUM_THREADS when the user set it (see train/environment.h), else this rank's share
    // of the cores.
    const char* env = std::getenv("OMP_NUM_THREADS");
    n = env != nullptr ? std::atoi(env) : 0;
    if (n <= 0) n = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / std::max(1, local_ranks));
  }
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
  return n;
}

}  // namespace tessel
