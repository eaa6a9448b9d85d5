// `tessel launch`: the command line of the launcher (launch/launcher.h, launch/commands.h).
#include "core/config/config.h"
#include "core/error.h"
#include "core/logging.h"
#include "launch/cli_args.h"
#include "launch/commands.h"
#include "launch/launcher.h"
#include "launch/usage.h"

namespace tessel {

LaunchRequest parse_launch_request(const std::vector<std::string>& args) {
  const ParsedArgs a =
      parse_args(args, "tessel launch", {"--nproc-per-node", "--hosts", "--hostfile", "--max-restarts", "--min-hosts"},
                 {"--dry-run"});
  TESSEL_CHECK(a.positional.size() == 1) << command_usage("launch");
  LaunchRequest r;
  r.config = a.positional[0];
  r.overrides = a.overrides;
  r.nproc_per_node = static_cast<int>(a.get_int("--nproc-per-node", 0, 1, kMaxRanksPerNode));
  r.hosts = split_list(a.get("--hosts", ""));
  TESSEL_CHECK(!a.has("--hosts") || !r.hosts.empty()) << "--hosts needs a comma-separated list of host names";
  r.hostfile = a.get("--hostfile", "");
  r.dry_run = a.has("--dry-run");
  r.max_restarts = static_cast<int>(a.get_int("--max-restarts", 0, 0, kMaxRestarts));
  r.min_hosts = static_cast<int>(a.get_int("--min-hosts", 0, 1, 1 << 20));
  return r;
}

int run_launch_command(const std::vector<std::string>& args) {
  init_logging(-1, "launch");
  const LaunchRequest r = parse_launch_request(args);
  // The config is checked here, once, before any rank starts.
  const Config config = load_config(r.config, r.overrides);
  return launch_job(r, config);
}

}  // namespace tessel
