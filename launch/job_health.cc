#include "launch/job_health.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <sstream>

#include "core/io/file.h"
#include "core/io/json.h"
#include "core/strings.h"

namespace tessel {
namespace fs = std::filesystem;
namespace {

std::string rank_word(const std::vector<int>& ranks) { return ranks.size() > 1 ? "ranks " : "rank "; }

std::string seconds(double s) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f s", s);
  return text;
}

}  // namespace

std::vector<RankBeat> read_heartbeats(const std::string& dir) {
  std::vector<RankBeat> beats;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return beats;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("rank_", 0) != 0 || entry.path().extension() != ".json") continue;
    try {
      const JsonValue v = parse_json(read_file(entry.path().string(), 1 << 16), entry.path().string());
      RankBeat b;
      b.rank = static_cast<int>(v.find("rank")->as_int());
      b.host = v.find("host")->as_string();
      b.pid = v.find("pid")->as_int();
      b.step = v.find("step")->as_int();
      b.time = v.find("time")->as_double();
      b.state = v.find("state")->as_string();
      b.error = v.find("error")->as_string();
      beats.push_back(b);
    } catch (const std::exception&) {
      continue;  // being replaced, or not a heartbeat
    }
  }
  std::sort(beats.begin(), beats.end(), [](const RankBeat& a, const RankBeat& b) { return a.rank < b.rank; });
  return beats;
}

JobHealth job_health(const std::vector<RankBeat>& beats) {
  JobHealth h;
  for (const RankBeat& b : beats) {
    h.last_step = std::max(h.last_step, b.step);
    if (b.state != "failed") continue;
    h.failed_at = h.failed ? std::min(h.failed_at, b.time) : b.time;
    h.failed = true;
  }
  return h;
}

namespace {

// The beats lagging the freshest by stale_s or more, with their lag; "done" and "failed" ranks
// are not stopped.
std::vector<JobWatch::Stopped> lagging(const std::vector<RankBeat>& beats, double stale_s) {
  double freshest = 0;
  for (const RankBeat& b : beats) freshest = std::max(freshest, b.time);
  std::vector<JobWatch::Stopped> out;
  for (const RankBeat& b : beats) {
    if (b.state == "training" && freshest - b.time >= stale_s) out.push_back({b, freshest - b.time});
  }
  return out;
}

}  // namespace

void JobWatch::observe(const std::vector<RankBeat>& beats) {
  if (health_.failed) return;  // what came before the failure is what counts
  health_ = job_health(beats);
  // Before a failure a rank that beats again was only slow; at the failure the ranks seen stopped
  // stay (the job's cleanup may wake a stopped rank for a last beat).
  if (!health_.failed) stopped_.clear();
  for (const Stopped& s : lagging(beats, stale_s_)) {
    auto it =
        std::find_if(stopped_.begin(), stopped_.end(), [&](const Stopped& t) { return t.beat.rank == s.beat.rank; });
    if (it == stopped_.end()) {
      stopped_.push_back(s);
    } else {
      *it = s;
    }
  }
}

std::string describe_failure(const std::vector<RankBeat>& beats, int world_size, const JobWatch& watch, double stale_s,
                             const std::function<bool(const std::string&)>& reachable,
                             std::vector<std::string>* lost_hosts) {
  std::ostringstream out;
  const RankBeat* first = nullptr;
  for (const RankBeat& b : beats) {
    if (b.state == "failed" && (first == nullptr || b.time < first->time)) first = &b;
  }
  if (first != nullptr) {
    out << "rank " << first->rank << " on " << first->host << " failed first, after step " << first->step << ": "
        << first->error;
  } else {
    out << "no rank recorded an error";
  }
  // Ranks that never beat.
  std::vector<int> silent;
  for (int r = 0; r < world_size; ++r) {
    if (std::none_of(beats.begin(), beats.end(), [r](const RankBeat& b) { return b.rank == r; })) silent.push_back(r);
  }
  if (!silent.empty()) out << "\n  " << rank_word(silent) << number_ranges(silent) << " never started beating";
  // Ranks that stopped beating, by host.
  std::vector<JobWatch::Stopped> stopped = watch.stopped();
  if (stopped.empty()) stopped = lagging(beats, stale_s);
  std::map<std::string, int> ranks_on;
  std::vector<std::string> hosts;  // in rank order
  for (const RankBeat& b : beats) {
    if (ranks_on[b.host]++ == 0) hosts.push_back(b.host);
  }
  std::vector<std::string> reported;  // hosts found gone
  for (const std::string& host : hosts) {
    std::vector<int> ranks;
    double lag = 0;
    int64_t step = 0;
    for (const JobWatch::Stopped& s : stopped) {
      if (s.beat.host != host) continue;
      ranks.push_back(s.beat.rank);
      lag = std::max(lag, s.lag_s);
      step = std::max(step, s.beat.step);
    }
    if (ranks.empty()) continue;
    std::sort(ranks.begin(), ranks.end());
    out << "\n  " << rank_word(ranks) << number_ranges(ranks) << " on " << host << " stopped beating after step "
        << step << " (" << seconds(lag) << " behind the others before the failure)";
    if (static_cast<int>(ranks.size()) == ranks_on[host] && reachable && !reachable(host)) {
      out << ": host " << host << " no longer answers; it is gone (or its network is)";
      reported.push_back(host);
    } else {
      out << ": " << (ranks.size() > 1 ? "their processes" : "its process") << " hung, stopped or died";
    }
  }
  // A host cut off from the network while its ranks live on (and beat, on a shared filesystem):
  // every rank fails alike at its collective timeout, and only the probe tells which host it was.
  for (const std::string& host : hosts) {
    if (!reachable || std::find(reported.begin(), reported.end(), host) != reported.end() || reachable(host)) continue;
    std::vector<int> ranks;
    for (const RankBeat& b : beats) {
      if (b.host == host) ranks.push_back(b.rank);
    }
    std::sort(ranks.begin(), ranks.end());
    out << "\n  host " << host << " (" << rank_word(ranks) << number_ranges(ranks)
        << ") no longer answers, though its ranks went on beating: its network is down or cut off";
    reported.push_back(host);
  }
  if (lost_hosts != nullptr) lost_hosts->insert(lost_hosts->end(), reported.begin(), reported.end());
  return out.str();
}

}  // namespace tessel
