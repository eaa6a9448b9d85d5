#include "train/environment.h"

#include <unistd.h>

#include <cstdlib>

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

}  // namespace tessel
