// The loss scaler's policy: dynamic scaling halves on overflow (skipping the step), doubles
// after 2000 good steps, stops when the scale would fall below 1; a fixed scale never moves;
// disabled scaling is the identity.
#include "optim/loss_scaler.h"

#include <catch2/catch.hpp>

#include "core/error.h"

using namespace tessel;

TEST_CASE("dynamic loss scaling halves on overflow and doubles after 2000 good steps", "[optim][scaler]") {
  LossScaler s(true, 0.0);
  CHECK(s.scale() == 65536.0);
  CHECK(s.overflowed(true, 0));
  CHECK(s.scale() == 32768.0);
  CHECK(s.overflowed(true, 1));
  CHECK(s.scale() == 16384.0);
  for (int64_t i = 0; i < LossScaler::kGrowthInterval - 1; ++i) {
    CHECK_FALSE(s.overflowed(false, 2 + i));
    s.applied();
  }
  CHECK(s.scale() == 16384.0);
  // A step without overflow that is not applied (the guard skipped it) is not a good step.
  CHECK_FALSE(s.overflowed(false, 2999));
  CHECK(s.scale() == 16384.0);
  s.applied();
  CHECK(s.scale() == 32768.0);
  CHECK(s.state().good_steps == 0);
  // An overflow resets the count of good steps.
  for (int i = 0; i < 10; ++i) s.applied();
  s.overflowed(true, 4100);
  CHECK(s.state().good_steps == 0);
}

TEST_CASE("a dynamic scale that would fall below 1 stops the run with a hint", "[optim][scaler][errors]") {
  LossScaler s(true, 0.0);
  for (int i = 0; i < 16; ++i) s.overflowed(true, i);  // 2^16 halved 16 times: 1
  CHECK(s.scale() == 1.0);
  CHECK_THROWS_WITH(s.overflowed(true, 16), Catch::Contains("step 17: the gradients overflow fp16") &&
                                                Catch::Contains("precision.compute=bf16"));
}

TEST_CASE("a fixed loss scale never moves and skips nothing itself", "[optim][scaler]") {
  LossScaler s(true, 1024.0);
  CHECK(s.scale() == 1024.0);
  CHECK_FALSE(s.overflowed(true, 0));  // a non-finite step under a fixed scale is StepGuard's
  for (int i = 0; i < 3000; ++i) s.applied();
  CHECK(s.scale() == 1024.0);
  s.restore({4.0, 7});
  CHECK(s.scale() == 1024.0);  // the config's fixed scale wins over a checkpoint's
}

TEST_CASE("disabled scaling is the identity and a bad setting is an error", "[optim][scaler][errors]") {
  LossScaler off(false, 0.0);
  CHECK(off.scale() == 1.0);
  CHECK_FALSE(off.overflowed(true, 0));
  CHECK_THROWS_WITH(LossScaler(true, -2.0), Catch::Contains("expected 'dynamic' (0) or a positive number, got -2"));
  LossScaler dyn(true, 0.0);
  dyn.restore({512.0, 12});
  CHECK(dyn.scale() == 512.0);
  CHECK(dyn.state().good_steps == 12);
}
