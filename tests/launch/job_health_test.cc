// The launcher's reading of the ranks' heartbeats (launch/job_health.h) and the goodput a
// restarted attempt records (train/goodput.h).
#include <catch2/catch.hpp>

#include <map>

#include "launch/job_health.h"
#include "train/goodput.h"

using namespace tessel;

namespace {

RankBeat beat(int rank, const std::string& host, int64_t step, double time, const std::string& state = "training",
              const std::string& error = "") {
  RankBeat b;
  b.rank = rank;
  b.host = host;
  b.step = step;
  b.time = time;
  b.state = state;
  b.error = error;
  return b;
}

}  // namespace

TEST_CASE("job health: ranks that stop beating before a failure are named by host, even if woken later",
          "[cpu][launch]") {
  JobWatch watch(3.0);
  // All beat; then h2's ranks stop while h1's wait in a collective and keep beating.
  watch.observe({beat(0, "h1", 40, 100), beat(1, "h1", 40, 100), beat(2, "h2", 40, 100), beat(3, "h2", 40, 100)});
  CHECK(watch.stopped().empty());
  watch.observe({beat(0, "h1", 41, 104), beat(1, "h1", 41, 104), beat(2, "h2", 41, 100.5), beat(3, "h2", 41, 100.4)});
  REQUIRE(watch.stopped().size() == 2);
  // Rank 1 times out; the cleanup then wakes h2's ranks for a last beat: the failure is what counts.
  watch.observe({beat(0, "h1", 41, 106), beat(1, "h1", 41, 105.5, "failed", "all_reduce #9 timed out"),
                 beat(2, "h2", 41, 100.5), beat(3, "h2", 41, 100.4)});
  CHECK(watch.health().failed);
  CHECK(watch.health().failed_at == 105.5);
  CHECK(watch.health().last_step == 41);
  const std::vector<RankBeat> after = {beat(0, "h1", 41, 107),
                                       beat(1, "h1", 41, 105.5, "failed", "all_reduce #9 timed out"),
                                       beat(2, "h2", 41, 107.2), beat(3, "h2", 41, 107.1)};
  watch.observe(after);
  REQUIRE(watch.stopped().size() == 2);
  std::vector<std::string> lost;
  std::map<std::string, bool> up = {{"h1", true}, {"h2", false}};
  const std::string gone = describe_failure(
      after, 5, watch, 3.0, [&](const std::string& h) { return up[h]; }, &lost);
  CHECK_THAT(gone, Catch::Contains("rank 1 on h1 failed first, after step 41: all_reduce #9 timed out"));
  CHECK_THAT(gone, Catch::Contains("rank 4 never started beating"));
  CHECK_THAT(gone, Catch::Contains("ranks 2-3 on h2 stopped beating after step 41 (5.6 s behind"));
  CHECK_THAT(gone, Catch::Contains("host h2 no longer answers"));
  CHECK(lost == std::vector<std::string>{"h2"});
  // The same host still answering: its processes, not the host.
  lost.clear();
  up["h2"] = true;
  const std::string hung = describe_failure(
      after, 4, watch, 3.0, [&](const std::string& h) { return up[h]; }, &lost);
  CHECK_THAT(hung, Catch::Contains("their processes hung, stopped or died"));
  CHECK(lost.empty());
  // h2 cut off from the network: its ranks beat on (a shared filesystem) and every rank times out.
  JobWatch cut(3.0);
  const std::string timeout = "all_reduce #83 did not complete within 5 s";
  const std::vector<RankBeat> all_failed = {
      beat(0, "h1", 41, 300.0, "failed", timeout), beat(1, "h1", 41, 300.1, "failed", timeout),
      beat(2, "h2", 41, 300.05, "failed", timeout), beat(3, "h2", 41, 300.2, "failed", timeout)};
  cut.observe(all_failed);
  CHECK(cut.stopped().empty());
  up["h2"] = false;
  const std::string partitioned = describe_failure(
      all_failed, 4, cut, 3.0, [&](const std::string& h) { return up[h]; }, &lost);
  CHECK_THAT(partitioned, Catch::Contains("rank 0 on h1 failed first"));
  CHECK_THAT(partitioned, Catch::Contains("host h2 (ranks 2-3) no longer answers, though its ranks went on beating"));
  CHECK(lost == std::vector<std::string>{"h2"});
  // Without a probe (one node) no host is called gone.
  lost.clear();
  CHECK_THAT(describe_failure(all_failed, 4, cut, 3.0, nullptr, &lost), !Catch::Contains("no longer answers"));
  CHECK(lost.empty());

  // A rank that lagged once but beats again before the failure was only slow.
  JobWatch slow(3.0);
  slow.observe({beat(0, "h1", 5, 200), beat(1, "h1", 5, 196)});
  CHECK(slow.stopped().size() == 1);
  slow.observe({beat(0, "h1", 9, 204), beat(1, "h1", 9, 204)});
  CHECK(slow.stopped().empty());
}

TEST_CASE("goodput: a restarted attempt records what it lost, the last step the productive share", "[cpu][launch]") {
  const std::map<std::string, std::string> vars = {{"TESSEL_RESTARTS", "2"},
                                                   {"TESSEL_FAILED_AT", "1000"},
                                                   {"TESSEL_FAILED_STEP", "57"},
                                                   {"TESSEL_JOB_START", "900"}};
  const EnvLookup env = [&](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
  Goodput g(env, 40, 1005);  // resumed at step 40
  CHECK(g.job_start() == 900);
  g.add_earlier_steps(30.0);  // with 30 s of this job's steps already kept
  const auto first = g.after_step(1.0, 1010, false);
  const std::map<std::string, double> m(first.begin(), first.end());
  CHECK(m.at("restarts") == 2);
  CHECK(m.at("steps_recomputed") == 17);
  CHECK(m.at("recovery_s") == 10);
  CHECK(g.after_step(1.0, 1011, false).empty());
  const auto last = g.after_step(2.0, 1020, true);
  const std::map<std::string, double> end(last.begin(), last.end());
  CHECK(end.at("productive_s") == 34);
  CHECK(end.at("wall_s") == 120);
  CHECK(end.at("goodput") == Approx(34.0 / 120));
  CHECK_THAT(g.summary(1020), Catch::Contains("2 restarts, 17 steps recomputed, 10.0 s from the failure") &&
                                  Catch::Contains("productive 34.0 s of 120.0 s wall time (28%)"));
  // A first attempt records no restart.
  Goodput fresh([](const char*) -> const char* { return nullptr; }, 0, 1000);
  CHECK(fresh.job_start() == 1000);  // outside tessel launch the job starts with the attempt
  CHECK(fresh.after_step(1.0, 1001, false).empty());
  // A malformed variable is an error naming it, not a silent default.
  const EnvLookup bad = [](const char* name) -> const char* {
    return std::string(name) == "TESSEL_RESTARTS" ? "1" : std::string(name) == "TESSEL_FAILED_AT" ? "12:00" : nullptr;
  };
  CHECK_THROWS_WITH(Goodput(bad, 0, 1000), Catch::Contains("TESSEL_FAILED_AT='12:00' is not a number"));
}
