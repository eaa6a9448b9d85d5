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
//                     unset, the cores divided among the node's ranks. `tessel launch` sets it
//                     to cores ÷ ranks per node unless the user did.
//  OMPI_COMM_WORLD_RANK/_SIZE/_LOCAL_RANK/_LOCAL_SIZE, SLURM_PROCID/_NTASKS/_LOCALID/
//  _NTASKS_PER_NODE/_TASKS_PER_NODE, RANK/WORLD_SIZE/LOCAL_RANK/LOCAL_WORLD_SIZE
//                     a rank's identity (parallel/rank_identity.h).
//  SLURM_JOB_ID, SLURM_NNODES
//                     `tessel launch` inside a Slurm allocation uses the allocation.
//  PATH               where `tessel launch` looks for mpirun; forwarded to the ranks with
//                     LD_LIBRARY_PATH, OPENBLAS_*, OMP_WAIT_POLICY, CUDA_VISIBLE_DEVICES,
//                     SPDLOG_LEVEL and every TESSEL_*, NCCL_* and OMPI_MCA_* variable
//                     (launch/launcher.cc).
//  TESSEL_LAUNCH_SSH_PORT
//                     the port `tessel launch` checks on each remote host before starting
//                     mpirun (default 22; 0 skips the check).
#pragma once

namespace tessel {

// Sets OpenMP and OpenBLAS threads: `threads` when > 0, else OMP_NUM_THREADS when set, else
// the cores shared among the `local_ranks` ranks of this node. Returns the number chosen.
int configure_threads(int threads, int local_ranks = 1);

// Called first thing in main(): may replace the process image (execv) and not return.
void select_blas_kernels(char** argv);

}  // namespace tessel
