// Every collective, in f32 and bf16, over sizes that do not divide evenly, against values
// each rank computes locally. Run under mpirun with 2, 3 and 4 ranks (tests/CMakeLists.txt).
#include <catch2/catch.hpp>

#include <cmath>

#include "core/dtype.h"
#include "parallel/topology.h"
#include "tests/parallel/mpi_world.h"

using namespace tessel;

namespace {

// Small integers: exact in bf16 and in any order of summation, so results compare exactly.
float value(int rank, int64_t i) { return static_cast<float>((rank + 1) * 3 + static_cast<int>(i % 7)); }

Tensor filled(DType dtype, int rank, int64_t n, int64_t first = 0) {
  Tensor t = Tensor::empty({n}, dtype);
  for (int64_t i = 0; i < n; ++i) {
    const float v = value(rank, first + i);
    if (dtype == DType::F32)
      t.data<float>()[i] = v;
    else
      t.data<uint16_t>()[i] = float_to_bf16(v);
  }
  return t;
}

float at(const Tensor& t, int64_t i) {
  return t.dtype() == DType::F32 ? t.data<float>()[i] : bf16_to_float(t.data<uint16_t>()[i]);
}

float expected(ReduceOp op, int size, int64_t i) {
  float sum = 0, max = -INFINITY;
  for (int r = 0; r < size; ++r) {
    sum += value(r, i);
    max = std::max(max, value(r, i));
  }
  if (op == ReduceOp::kMax) return max;
  return op == ReduceOp::kAvg ? sum / static_cast<float>(size) : sum;
}

}  // namespace

TEST_CASE("all_reduce sum, avg and max in f32 and bf16 over uneven sizes", "[mpi][comm]") {
  MpiCommunicator& world = test_world();
  const int P = world.size();
  for (DType dtype : {DType::F32, DType::BF16}) {
    for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kAvg, ReduceOp::kMax}) {
      for (int64_t n : {1, 7, 1000, 65537}) {
        INFO(dtype_name(dtype) << " " << reduce_op_name(op) << " n=" << n);
        Tensor x = filled(dtype, world.rank(), n);
        world.all_reduce(x, op);
        int wrong = 0;
        for (int64_t i = 0; i < n; ++i) {
          const float want = expected(op, P, i);
          const float tolerance = dtype == DType::BF16 && op == ReduceOp::kAvg ? std::abs(want) / 128 : 0.0f;
          if (std::abs(at(x, i) - want) > tolerance) ++wrong;
        }
        CHECK(wrong == 0);
      }
    }
  }
}

TEST_CASE("async all_reduces of several buckets complete in any wait order", "[mpi][comm]") {
  MpiCommunicator& world = test_world();
  std::vector<Tensor> buckets;
  std::vector<std::shared_ptr<Work>> works;
  for (int b = 0; b < 6; ++b) {
    buckets.push_back(filled(DType::F32, world.rank(), 1000 + 333 * b));
    works.push_back(world.all_reduce_async(buckets.back(), ReduceOp::kSum));
  }
  for (int b = 5; b >= 0; --b) works[static_cast<size_t>(b)]->wait();
  for (int b = 0; b < 6; ++b) {
    CHECK(works[static_cast<size_t>(b)]->is_completed());
    CHECK(buckets[static_cast<size_t>(b)].data<float>()[999] == expected(ReduceOp::kSum, world.size(), 999));
  }
}

TEST_CASE("reduce_scatter gives each rank its block of the reduction", "[mpi][comm]") {
  MpiCommunicator& world = test_world();
  const int P = world.size(), r = world.rank();
  for (DType dtype : {DType::F32, DType::BF16}) {
    for (int64_t n : {1, 13, 4099}) {
      INFO(dtype_name(dtype) << " block " << n);
      Tensor in = filled(dtype, r, n * P);
      Tensor out = Tensor::empty({n}, dtype);
      world.reduce_scatter(in, out, ReduceOp::kSum);
      int wrong = 0;
      for (int64_t i = 0; i < n; ++i) wrong += at(out, i) != expected(ReduceOp::kSum, P, r * n + i);
      CHECK(wrong == 0);
    }
  }
}

TEST_CASE("all_gather, in place and not, in any dtype", "[mpi][comm]") {
  MpiCommunicator& world = test_world();
  const int P = world.size(), r = world.rank();
  for (int64_t n : {1, 5, 3001}) {
    Tensor in = filled(DType::F32, r, n);
    Tensor out = Tensor::zeros({n * P}, DType::F32);
    world.all_gather(in, out);
    Tensor shared = Tensor::zeros({n * P}, DType::BF16);
    Tensor mine = shared.slice(r * n, (r + 1) * n);
    mine.copy_from(filled(DType::BF16, r, n));
    world.all_gather(mine, shared);  // in place: the rank's block is already where it belongs
    int wrong = 0;
    for (int q = 0; q < P; ++q) {
      for (int64_t i = 0; i < n; ++i) {
        wrong += out.data<float>()[q * n + i] != value(q, i);
        wrong += at(shared, q * n + i) != value(q, i);
      }
    }
    CHECK(wrong == 0);
  }
}

TEST_CASE("broadcast from every root and a ring of sends and receives", "[mpi][comm]") {
  MpiCommunicator& world = test_world();
  const int P = world.size(), r = world.rank();
  for (int root = 0; root < P; ++root) {
    Tensor x = Tensor::from_vector<int32_t>({r, r * 10, 7}, {3});
    world.broadcast(x, root);
    CHECK(x.data<int32_t>()[1] == root * 10);
  }
  // Everyone sends right and receives from the left, posted together.
  Tensor send = filled(DType::F32, r, 257);
  Tensor recv = Tensor::zeros({257}, DType::F32);
  const int right = (r + 1) % P, left = (r + P - 1) % P;
  world.send_recv({{P2POp::kSend, send, right, 3}, {P2POp::kRecv, recv, left, 3}});
  CHECK(recv.data<float>()[256] == value(left, 256));
  world.barrier();
  double d[2] = {static_cast<double>(r), 1.0};
  world.all_reduce_doubles(d, 2, ReduceOp::kSum);
  CHECK(d[0] == P * (P - 1) / 2.0);
  CHECK(d[1] == P);
  CHECK(world.recorder().first_pending() == 0);
}

TEST_CASE("split along the grid gives groups that reduce only among themselves", "[mpi][comm]") {
  MpiCommunicator& world = test_world();
  if (world.size() % 2 != 0) return;  // the 2 × (P/2) grid needs an even world
  GridShape shape;
  shape.tp = 2;
  shape.dp = world.size() / 2;
  Topology topo(shape, world.rank());
  std::unique_ptr<Communicator> tp = world.split(topo.group_color(Axis::kTp), topo.coord(Axis::kTp), "tp");
  std::unique_ptr<Communicator> dp = world.split(topo.group_color(Axis::kDp), topo.coord(Axis::kDp), "dp");
  CHECK(tp->size() == 2);
  CHECK(tp->rank() == topo.coord(Axis::kTp));
  CHECK(dp->rank() == topo.coord(Axis::kDp));
  double x = world.rank();
  tp->all_reduce_doubles(&x, 1, ReduceOp::kSum);
  double want = 0;
  for (int q : topo.group(Axis::kTp)) want += q;
  CHECK(x == want);
  double y = world.rank();
  dp->all_reduce_doubles(&y, 1, ReduceOp::kMax);
  CHECK(y == topo.group(Axis::kDp).back());
}

TEST_CASE("a collective a peer never joins fails after parallel.timeout_s, naming it", "[mpi][comm]") {
  MpiCommunicator& world = test_world();
  std::unique_ptr<MpiCommunicator> impatient = MpiCommunicator::world(test_mpi_runtime(), 0.3);
  Tensor x = Tensor::from_vector<float>({1.0f}, {1});
  if (world.rank() == 0) {
    std::shared_ptr<Work> w = impatient->all_reduce_async(x, ReduceOp::kSum);
    CHECK_THROWS_WITH(w->wait(), Catch::Contains("all_reduce(sum) #1 on communicator 'world' (rank 0 of") &&
                                     Catch::Contains("did not complete within 0.3 s (parallel.timeout_s)"));
    CHECK(impatient->recorder().first_pending() == 1);
    world.barrier();  // now the others join, and the operation can finish
    w->wait();
  } else {
    world.barrier();
    impatient->all_reduce(x, ReduceOp::kSum);
  }
  CHECK(x.data<float>()[0] == static_cast<float>(world.size()));
}

TEST_CASE("all_to_all sends each rank its own count of rows (zero counts included)", "[mpi][comm]") {
  MpiCommunicator& world = test_world();
  const int P = world.size(), r = world.rank();
  constexpr int64_t kWidth = 3;
  // Rank r sends (r + j) % 3 rows to rank j (some pairs nothing), each row holding (sender,
  // receiver, row) so that every element says where it should land.
  std::vector<int64_t> send_rows(static_cast<size_t>(P));
  int64_t total = 0;
  for (int j = 0; j < P; ++j) total += send_rows[static_cast<size_t>(j)] = (r + j) % 3;
  Tensor in = Tensor::zeros({total + 1, kWidth}, DType::F32);  // a spare row, never sent
  int64_t row = 0;
  for (int j = 0; j < P; ++j)
    for (int64_t k = 0; k < send_rows[static_cast<size_t>(j)]; ++k, ++row) {
      in.data<float>()[row * kWidth + 0] = static_cast<float>(r);
      in.data<float>()[row * kWidth + 1] = static_cast<float>(j);
      in.data<float>()[row * kWidth + 2] = static_cast<float>(k);
    }
  const std::vector<int64_t> recv_rows = world.all_to_all_counts(send_rows);
  int64_t received = 0;
  for (int i = 0; i < P; ++i) {
    CHECK(recv_rows[static_cast<size_t>(i)] == (i + r) % 3);
    received += recv_rows[static_cast<size_t>(i)];
  }
  Tensor out = Tensor::zeros({received, kWidth}, DType::F32);
  for (int64_t i = 0; i < out.numel(); ++i) out.data<float>()[i] = -1.0f;
  world.all_to_all(in, send_rows, out, recv_rows);
  row = 0;
  for (int i = 0; i < P; ++i)
    for (int64_t k = 0; k < recv_rows[static_cast<size_t>(i)]; ++k, ++row) {
      CHECK(out.data<float>()[row * kWidth + 0] == static_cast<float>(i));
      CHECK(out.data<float>()[row * kWidth + 1] == static_cast<float>(r));
      CHECK(out.data<float>()[row * kWidth + 2] == static_cast<float>(k));
    }
  // Counts that do not match the group, or overrun the tensor, are errors before anything is sent.
  const std::vector<int64_t> one_more(static_cast<size_t>(P + 1), 0);
  CHECK_THROWS_WITH(world.all_to_all(in, one_more, out, recv_rows),
                    Catch::Contains("send_rows lists " + std::to_string(P + 1) + " counts for a group of"));
  std::vector<int64_t> too_many(static_cast<size_t>(P), total + 5);
  CHECK_THROWS_WITH(world.all_to_all(in, too_many, out, recv_rows), Catch::Contains("rows of a tensor of"));
}
