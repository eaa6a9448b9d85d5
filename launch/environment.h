// Every environment variable Tessel reads or sets, declared in one place.
//
//  OPENBLAS_CORETYPE  read by OpenBLAS when it loads. Debian's OpenBLAS 0.3.21 runs its Haswell
//                     (AVX2) kernels on AMD CPUs with AVX-512, at half the sgemm speed of its
//                     SkylakeX kernels (measured: 175 vs 333 GFLOP/s for a GPT-2 QKV product on
//                     2 cores). When it is unset and the CPU has AVX-512 F/BW/DQ/VL, `tessel`
//                     sets it to SkylakeX and re-executes itself, because OpenBLAS reads it before
//                     main() runs. A value the user set is always kept.
//  TESSEL_REEXECED    set by that re-execution so it happens at most once.
//  OMP_NUM_THREADS    threads per process when run.threads is 0 (run.threads wins when set);
//                     unset, all cores.
#pragma once

namespace tessel {

// Called first thing in main(): may replace the process image (execv) and not return.
void select_blas_kernels(char** argv);

}  // namespace tessel
