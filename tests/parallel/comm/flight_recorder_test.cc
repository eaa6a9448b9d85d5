// The flight recorder keeps the newest operations and tells which one is still pending.
#include <catch2/catch.hpp>

#include "core/comm/flight_recorder.h"
#include "parallel/comm/single_communicator.h"

using namespace tessel;

TEST_CASE("flight recorder numbers operations and finds the first pending one", "[cpu][comm]") {
  FlightRecorder r(3);
  const uint64_t a = r.record("all_reduce(sum)", 10, "F32");
  const uint64_t b = r.record("broadcast", 4, "I32", 0);
  CHECK(a == 1);
  CHECK(b == 2);
  CHECK(r.first_pending() == 1);
  r.complete(a);
  CHECK(r.first_pending() == 2);
  r.complete(b);
  CHECK(r.first_pending() == 0);
  r.record("barrier", 0, "-");
  r.record("all_gather", 8, "BF16");
  r.record("send_recv(2 ops)", 8, "F32", 1);
  const std::string dump = r.dump("[rank 0] ");
  CHECK(dump.find("#1 ") == std::string::npos);  // only the newest 3 are kept
  CHECK(dump.find("[rank 0] #5 send_recv(2 ops) 8 x F32 peer/root 1 PENDING") != std::string::npos);
  CHECK(r.last_seq() == 5);
}

TEST_CASE("a group of one copies, keeps, and meets its own sends", "[cpu][comm]") {
  SingleCommunicator c;
  Tensor x = Tensor::from_vector<float>({1, 2, 3}, {3});
  c.all_reduce(x, ReduceOp::kAvg);
  CHECK(x.data<float>()[2] == 3.0f);
  Tensor out = Tensor::zeros({3}, DType::F32);
  c.all_gather(x, out);
  CHECK(out.data<float>()[1] == 2.0f);
  Tensor got = Tensor::zeros({3}, DType::F32);
  c.send_recv({{P2POp::kRecv, got, 0, 7}, {P2POp::kSend, x, 0, 7}});
  CHECK(got.data<float>()[0] == 1.0f);
  CHECK_THROWS_WITH(c.send_recv({{P2POp::kRecv, got, 0, 8}}), Catch::Contains("no matching send"));
  CHECK(c.recorder().last_seq() == 4);
}

TEST_CASE("a group of one's all_to_all keeps its own rows", "[cpu][comm]") {
  SingleCommunicator c;
  Tensor in = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {3, 2});
  CHECK(c.all_to_all_counts({2}) == std::vector<int64_t>{2});
  Tensor out = Tensor::zeros({2, 2}, DType::F32);
  c.all_to_all(in, {2}, out, {2});
  CHECK(out.data<float>()[3] == 4.0f);
  Tensor none = Tensor::zeros({0, 2}, DType::F32);
  c.all_to_all(in, {0}, none, {0});  // nothing to exchange: no operation posted
  CHECK_THROWS_WITH(c.all_to_all(in, {-1}, out, {2}), Catch::Contains("send_rows[0] is -1, a negative count"));
}
