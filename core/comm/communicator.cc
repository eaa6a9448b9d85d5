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

namespace {

// Rows of a tensor along its first dimension, and the elements of one row.
int64_t rows_of(const Tensor& t) { return t.shape().empty() ? 0 : t.shape()[0]; }
int64_t row_width(const Tensor& t) { return rows_of(t) == 0 ? 0 : t.numel() / rows_of(t); }

int64_t checked_total(const std::vector<int64_t>& rows, int size, const char* which, const char* what) {
  TESSEL_CHECK(static_cast<int>(rows.size()) == size)
      << what << ": " << which << " lists " << rows.size() << " counts for a group of " << size;
  int64_t total = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    TESSEL_CHECK(rows[i] >= 0) << what << ": " << which << "[" << i << "] is " << rows[i] << ", a negative count";
    total += rows[i];
  }
  return total;
}

}  // namespace

std::shared_ptr<Work> Communicator::all_to_all_async(const Tensor& in, const std::vector<int64_t>& send_rows,
                                                     const Tensor& out, const std::vector<int64_t>& recv_rows) {
  const char* what = "all_to_all";
  const int64_t sent = checked_total(send_rows, size(), "send_rows", what);
  const int64_t received = checked_total(recv_rows, size(), "recv_rows", what);
  TESSEL_CHECK(in.dtype() == out.dtype())
      << what << ": dtypes differ (" << dtype_name(in.dtype()) << " and " << dtype_name(out.dtype()) << ")";
  TESSEL_CHECK(sent <= rows_of(in) && received <= rows_of(out))
      << what << ": sends " << sent << " rows of a tensor of " << rows_of(in) << " and receives " << received
      << " into one of " << rows_of(out);
  TESSEL_CHECK(sent == 0 || received == 0 || row_width(in) == row_width(out))
      << what << ": rows of " << row_width(in) << " elements sent, of " << row_width(out) << " received";
  std::vector<P2POp> ops;
  int64_t send_at = 0, recv_at = 0;
  for (int peer = 0; peer < size(); ++peer) {
    const int64_t s = send_rows[static_cast<size_t>(peer)], r = recv_rows[static_cast<size_t>(peer)];
    if (s > 0) ops.push_back({P2POp::kSend, in.slice(send_at, send_at + s), peer, 0});
    if (r > 0) ops.push_back({P2POp::kRecv, out.slice(recv_at, recv_at + r), peer, 0});
    send_at += s;
    recv_at += r;
  }
  return send_recv_async(ops);
}

std::vector<int64_t> Communicator::all_to_all_counts(const std::vector<int64_t>& send_rows) {
  const int n = size();
  checked_total(send_rows, n, "send_rows", "all_to_all_counts");
  // Row r of the matrix: what rank r sends to each rank; each rank fills its own row, the sum
  // gives every rank the whole matrix (exact: counts are far below 2^53).
  std::vector<double> matrix(static_cast<size_t>(n) * static_cast<size_t>(n), 0.0);
  for (int j = 0; j < n; ++j)
    matrix[static_cast<size_t>(rank()) * static_cast<size_t>(n) + static_cast<size_t>(j)] =
        static_cast<double>(send_rows[static_cast<size_t>(j)]);
  all_reduce_doubles(matrix.data(), n * n, ReduceOp::kSum);
  std::vector<int64_t> recv(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i)
    recv[static_cast<size_t>(i)] =
        static_cast<int64_t>(matrix[static_cast<size_t>(i) * static_cast<size_t>(n) + static_cast<size_t>(rank())]);
  return recv;
}

}  // namespace tessel
