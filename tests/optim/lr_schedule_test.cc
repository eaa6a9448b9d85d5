// Learning-rate schedules (optim/lr_schedule.h): exact values at the phase boundaries.
#include "optim/lr_schedule.h"

#include <catch2/catch.hpp>

#include <cmath>

#include "core/error.h"

namespace tessel {
namespace {

OptimConfig schedule(const char* name, int64_t warmup, int64_t decay = 0) {
  OptimConfig o;
  REQUIRE(parse_name(std::string(name), &o.schedule));
  o.lr = 1.0;
  o.min_lr = 0.1;
  o.warmup_steps = warmup;
  o.decay_steps = decay;
  return o;
}

TEST_CASE("warmup is linear from lr/warmup at step 0 to lr at its last step", "[optim]") {
  for (const char* name : {"constant", "linear", "cosine", "wsd"}) {
    INFO(name);
    const OptimConfig o = schedule(name, 4);
    CHECK(learning_rate(o, 100, 0) == 0.25);
    CHECK(learning_rate(o, 100, 1) == 0.5);
    CHECK(learning_rate(o, 100, 3) == 1.0);
    CHECK(learning_rate(o, 100, 4) == 1.0);  // first step after warmup: the full rate
  }
}

TEST_CASE("constant stays at lr", "[optim]") {
  const OptimConfig o = schedule("constant", 0);
  CHECK(learning_rate(o, 10, 0) == 1.0);
  CHECK(learning_rate(o, 10, 1000) == 1.0);
}

TEST_CASE("linear decays to min_lr at warmup + decay_steps", "[optim]") {
  const OptimConfig o = schedule("linear", 10, 20);
  CHECK(learning_rate(o, 100, 10) == 1.0);
  CHECK(learning_rate(o, 100, 20) == Approx(0.55).margin(1e-15));
  CHECK(learning_rate(o, 100, 30) == 0.1);
  CHECK(learning_rate(o, 100, 99) == 0.1);
  // decay_steps 0: the rest of the run.
  const OptimConfig rest = schedule("linear", 10);
  CHECK(learning_rate(rest, 110, 60) == Approx(0.55).margin(1e-15));
  CHECK(learning_rate(rest, 110, 110) == 0.1);
}

TEST_CASE("cosine goes from lr through the midpoint to min_lr", "[optim]") {
  const OptimConfig o = schedule("cosine", 10);
  CHECK(learning_rate(o, 110, 10) == 1.0);
  CHECK(learning_rate(o, 110, 60) == Approx(0.55).margin(1e-15));
  CHECK(learning_rate(o, 110, 35) == Approx(0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI / 4))));
  CHECK(learning_rate(o, 110, 110) == Approx(0.1).margin(1e-15));
  CHECK(learning_rate(o, 110, 500) == Approx(0.1).margin(1e-15));
}

TEST_CASE("wsd holds lr, then decays over the last decay_steps", "[optim]") {
  const OptimConfig o = schedule("wsd", 10, 20);
  CHECK(learning_rate(o, 100, 10) == 1.0);
  CHECK(learning_rate(o, 100, 80) == 1.0);  // decay starts at total - decay_steps
  CHECK(learning_rate(o, 100, 90) == Approx(0.55).margin(1e-15));
  CHECK(learning_rate(o, 100, 100) == 0.1);
  // decay_steps 0: the last 20% of the run.
  const OptimConfig fifth = schedule("wsd", 0);
  CHECK(learning_rate(fifth, 100, 79) == 1.0);
  CHECK(learning_rate(fifth, 100, 80) == 1.0);
  CHECK(learning_rate(fifth, 100, 90) == Approx(0.55).margin(1e-15));
  CHECK(learning_rate(fifth, 100, 99) == Approx(1.0 - 0.9 * 19.0 / 20.0).margin(1e-15));
}

TEST_CASE("schedules reject what they cannot compute", "[optim]") {
  CHECK_THROWS_WITH(learning_rate(schedule("cosine", 0), 10, -1), Catch::Contains("0-based"));
  OptimConfig unknown = schedule("cosine", 0);
  unknown.schedule = static_cast<LrSchedule>(9);  // a value no name maps to
  CHECK_THROWS_WITH(learning_rate(unknown, 10, 1), Catch::Contains("optim.schedule: invalid value 9"));
}

}  // namespace
}  // namespace tessel
