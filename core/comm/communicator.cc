#include "core/comm/communicator.h"

#include "core/error.h"

namespace tessel {

const char* reduce_op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum: return "sum";
    case ReduceOp::kAvg: return "avg";
    case ReduceOp::kMax: return "max";
  }
  return "?";
}

void check_reduce_dtype(const Tensor& x, const char* what) {
  TESSEL_CHECK(x.dtype() == DType::F32 || x.dtype() == DType::BF16)
      << what << ": reductions take f32 or bf16 tensors, got " << dtype_name(x.dtype());
}

void check_gather_shapes(const Tensor& in, const Tensor& out, int size, const char* what) {
  TESSEL_CHECK(in.dtype() == out.dtype())
      << what << ": dtypes differ (" << dtype_name(in.dtype()) << " and " << dtype_name(out.dtype()) << ")";
  TESSEL_CHECK(out.numel() == in.numel() * size) << what << ": the group's tensor must hold " << size << " blocks of "
                                                 << in.numel() << " elements, found " << out.numel();
}

}  // namespace tessel
