// Non-finite step policy (optim/step_guard.h).
#include "optim/step_guard.h"

#include <catch2/catch.hpp>

#include <limits>

#include "core/error.h"

namespace tessel {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

TEST_CASE("finite steps pass, non-finite ones are skipped and counted", "[optim]") {
  StepGuard guard(2);
  CHECK_FALSE(guard.should_skip(2.5, 1.0, 0));
  CHECK(guard.should_skip(kNaN, 1.0, 1));
  CHECK(guard.should_skip(2.0, kInf, 2));
  CHECK(guard.state().consecutive == 2);
  CHECK_FALSE(guard.should_skip(2.0, 1.0, 3));  // a good step ends the streak
  CHECK(guard.state().consecutive == 0);
  CHECK(guard.state().total_skipped == 2);
}

TEST_CASE("a streak longer than the limit stops with a hint", "[optim]") {
  StepGuard guard(2);
  CHECK(guard.should_skip(kNaN, 1.0, 40));
  CHECK(guard.should_skip(kNaN, kNaN, 41));
  CHECK_THROWS_WITH(guard.should_skip(kNaN, 1.0, 42),
                    Catch::Contains("3 consecutive steps had non-finite loss or gradients "
                                    "(last: loss=nan grad_norm=1 at step 42)") &&
                        Catch::Contains("hint: lower optim.lr, check data, or raise "
                                        "optim.max_skipped_steps"));
  CHECK(guard.state().total_skipped == 3);

  StepGuard strict(0);
  CHECK_THROWS_WITH(strict.should_skip(1.0, kInf), Catch::Contains("1 consecutive steps"));
}

TEST_CASE("the guard's state survives a checkpoint round trip", "[optim]") {
  StepGuard before(3);
  before.should_skip(kNaN, 0.0);
  before.should_skip(kNaN, 0.0);
  StepGuard after(3);
  after.restore(before.state());
  CHECK(after.should_skip(kNaN, 0.0));
  CHECK_THROWS(after.should_skip(kNaN, 0.0));  // the 4th in a row, counting from before
}

}  // namespace
}  // namespace tessel
