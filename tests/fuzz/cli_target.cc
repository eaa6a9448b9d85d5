// The launcher's command line as `tessel launch` reads it: NUL-separated arguments (flags,
// CONFIG, --set overrides, --hosts lists), the first part being the contents of a hostfile that
// --hostfile points at when given. The overrides are applied to the demo config, and the mpirun
// command planned (without running it).
#include <string>
#include <vector>

#include "core/config/config.h"
#include "core/error.h"
#include "core/io/file.h"
#include "launch/launcher.h"
#include "tests/fuzz/split.h"
#include "tests/fuzz/target.h"

namespace tessel::fuzz {

void fuzz_cli(std::string_view data) {
  static const std::string demo = read_file(std::string(TESSEL_SOURCE_DIR) + "/configs/demo.yaml");
  std::vector<std::string> args = split_nul(data);
  const std::string hostfile = scratch_file("hostfile", args.front());
  args.erase(args.begin());
  try {
    LaunchRequest r = parse_launch_request(args);
    if (!r.hostfile.empty()) r.hostfile = hostfile;
    const Config config = parse_config(demo, "demo.yaml", r.overrides);
    LaunchHost host;
    host.tessel = "/usr/bin/tessel";
    host.mpirun = "/usr/bin/mpirun";
    host.cores = 2;
    host.env = [](const char*) -> const char* { return nullptr; };
    plan_launch(r, config.parallel, host);
  } catch (const Error&) {
  }
}

}  // namespace tessel::fuzz
