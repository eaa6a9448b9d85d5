#include <cmath>
#include <cstring>

#include <catch2/catch.hpp>

#include "core/tensor.h"

using namespace tessel;

TEST_CASE("views share storage with the tensor they view", "[cpu][tensor]") {
  Tensor t = Tensor::from_vector<float>({0, 1, 2, 3, 4, 5}, {3, 2});
  Tensor row = t.slice(1, 2);
  CHECK(row.shape() == Shape{1, 2});
  CHECK(row.data<float>()[0] == 2.0f);
  row.data<float>()[1] = 42.0f;
  CHECK(t.data<float>()[3] == 42.0f);
  Tensor flat = t.reshape({6});
  CHECK(flat.data<float>()[3] == 42.0f);
  Tensor v = flat.view(4, {2});
  CHECK(v.data<float>()[1] == 5.0f);
  CHECK(v.storage() == t.storage());
  Tensor c = t.clone();
  c.data<float>()[0] = -1.0f;
  CHECK(t.data<float>()[0] == 0.0f);  // a clone owns its own storage
}

TEST_CASE("a view keeps its storage alive after the original handle is gone", "[cpu][tensor]") {
  Tensor v;
  {
    Tensor t = Tensor::from_vector<int32_t>({7, 8, 9}, {3});
    v = t.view(2, {1});
  }
  CHECK(v.data<int32_t>()[0] == 9);
}

TEST_CASE("out-of-range views, bad reshapes and wrong element types are errors", "[cpu][tensor][errors]") {
  Tensor t = Tensor::zeros({4, 3}, DType::F32);
  CHECK_THROWS_WITH(t.slice(2, 5), Catch::Contains("out of range"));
  CHECK_THROWS_WITH(t.reshape({5, 2}), Catch::Contains("cannot reshape F32[4, 3]"));
  CHECK_THROWS_WITH(t.view(10, {3}), Catch::Contains("does not fit"));
  CHECK_THROWS_WITH(t.data<int32_t>(), Catch::Contains("wrong element type"));
  CHECK_THROWS(Tensor::empty({2, -1}, DType::F32));
}

TEST_CASE("zeros are zero, for small and for large (mapped) buffers", "[cpu][tensor]") {
  for (int64_t n : {int64_t{10}, int64_t{1} << 20}) {
    Tensor t = Tensor::zeros({n}, DType::F32);
    const float* p = t.data<float>();
    CHECK(p[0] == 0.0f);
    CHECK(p[n - 1] == 0.0f);
    CHECK(reinterpret_cast<uintptr_t>(p) % 64 == 0);
    t.data<float>()[n / 2] = 3.0f;
    t.fill_zero();
    CHECK(p[n / 2] == 0.0f);
  }
}

TEST_CASE("dtype sizes and names follow safetensors", "[cpu][tensor]") {
  CHECK(dtype_size(DType::BF16) == 2);
  CHECK(dtype_size(DType::I64) == 8);
  CHECK(std::string(dtype_name(DType::U16)) == "U16");
  CHECK(dtype_from_name("BF16") == DType::BF16);
  CHECK_THROWS_WITH(dtype_from_name("F8"), Catch::Contains("expected one of"));
}

TEST_CASE("bf16 and f16 conversions round to nearest even and keep specials", "[cpu][tensor]") {
  CHECK(float_to_bf16(1.0f) == 0x3f80);
  CHECK(bf16_to_float(0x3f80) == 1.0f);
  CHECK(float_to_bf16(1.00390625f) == 0x3f80);  // halfway 1 + 2^-8: ties to even (down)
  CHECK(float_to_bf16(1.01171875f) == 0x3f82);  // halfway 1 + 3·2^-8: ties to even (up)
  CHECK(std::isnan(bf16_to_float(float_to_bf16(NAN))));
  CHECK(f16_to_float(float_to_f16(1.0f)) == 1.0f);
  CHECK(float_to_f16(1.0f) == 0x3c00);
  CHECK(float_to_f16(65504.0f) == 0x7bff);  // largest finite f16
  CHECK(float_to_f16(1e6f) == 0x7c00);      // overflow to infinity
  CHECK(float_to_f16(-2.0f) == 0xc000);
  CHECK(f16_to_float(0x0001) == std::ldexp(1.0f, -24));  // smallest subnormal
  CHECK(float_to_f16(std::ldexp(1.0f, -24)) == 0x0001);
  CHECK(float_to_f16(std::ldexp(3.0f, -16)) == 0x0300);  // a subnormal with a fraction
  CHECK(std::isnan(f16_to_float(float_to_f16(NAN))));
  for (uint16_t h = 0; h < 0x7c00; h += 7) REQUIRE(float_to_f16(f16_to_float(h)) == h);
}
