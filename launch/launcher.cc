#include "launch/launcher.h"

#include "launch/job_health.h"
#include "parallel/pipeline_schedule.h"
#include "parallel/topology.h"
#include "train/heartbeat.h"
#include "train/train_step.h"

#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <spdlog/spdlog.h>

#include "core/config/config.h"
#include "core/error.h"
#include "core/logging.h"
#include "core/measure.h"
#include "core/version.h"
#include "launch/cli_args.h"

extern char** environ;

namespace tessel {
namespace fs = std::filesystem;
namespace {

// Variables the ranks' libraries read, forwarded to every node when set here. Names starting
// with one of kForwardedPrefixes are forwarded too.
const char* const kForwarded[] = {"PATH",
                                  "LD_LIBRARY_PATH",
                                  "OPENBLAS_CORETYPE",
                                  "OPENBLAS_NUM_THREADS",
                                  "OMP_WAIT_POLICY",
                                  "CUDA_VISIBLE_DEVICES",
                                  "SPDLOG_LEVEL",
                                  "ASAN_OPTIONS",
                                  "UBSAN_OPTIONS",
                                  "LSAN_OPTIONS",
                                  "TSAN_OPTIONS"};
const char* const kForwardedPrefixes[] = {"TESSEL_", "NCCL_", "OMPI_MCA_"};

// A line of an OpenMPI hostfile: "name [slots=N] [max_slots=M] ...", '#' comments.
struct HostfileEntry {
  std::string name;
  int slots = 0;  // 0: not given
  int line = 0;
};

std::vector<HostfileEntry> hostfile_entries(const std::string& path) {
  std::ifstream in(path);
  TESSEL_CHECK(in.good()) << "--hostfile " << path << ": cannot be read (" << std::strerror(errno)
                          << "); hint: one host per line, e.g. 'node01 slots=8'";
  std::vector<HostfileEntry> hosts;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    line = line.substr(0, line.find('#'));
    std::stringstream words(line);
    HostfileEntry e;
    e.line = number;
    if (!(words >> e.name)) continue;
    for (std::string word; words >> word;) {
      if (word.rfind("slots=", 0) != 0) continue;
      const std::string value = word.substr(6);
      char* end = nullptr;
      const long slots = std::strtol(value.c_str(), &end, 10);
      TESSEL_CHECK(!value.empty() && *end == '\0' && slots >= 1 && slots <= 1 << 20)
          << path << ":" << number << ": '" << word << "' for host " << e.name
          << " is not a slot count; hint: slots=N with N >= 1, e.g. 'node01 slots=8'";
      e.slots = static_cast<int>(slots);
    }
    hosts.push_back(e);
  }
  TESSEL_CHECK(!hosts.empty()) << "--hostfile " << path
                               << " names no host; hint: one host per line, e.g. 'node01 slots=8'";
  return hosts;
}

// Host names of an OpenMPI hostfile, in file order.
std::vector<std::string> hostfile_hosts(const std::string& path) {
  std::vector<std::string> hosts;
  for (const HostfileEntry& e : hostfile_entries(path)) hosts.push_back(e.name);
  return hosts;
}

// This machine: localhost, a loopback address, or its own host name.
bool is_local(const std::string& host) {
  if (host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1") return true;
  char name[256] = {};
  gethostname(name, sizeof(name) - 1);
  return host == name;
}

// Whether a TCP connection to one of `info`'s addresses opens within `timeout_ms`; `error`
// gets the last failure.
bool connects(const addrinfo* info, int timeout_ms, std::string* error) {
  for (const addrinfo* a = info; a != nullptr; a = a->ai_next) {
    const int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) continue;
    int rc = connect(fd, a->ai_addr, a->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      pollfd p = {fd, POLLOUT, 0};
      rc = poll(&p, 1, timeout_ms);
      if (rc == 0) {
        *error = "no answer within " + std::to_string(timeout_ms / 1000) + " s";
        close(fd);
        continue;
      }
      int so_error = 0;
      socklen_t len = sizeof(so_error);
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len);
      rc = so_error == 0 ? 0 : -1;
      if (so_error != 0) errno = so_error;
    }
    if (rc != 0) *error = std::strerror(errno);
    close(fd);
    if (rc == 0) return true;
  }
  return false;
}

// Fails before mpirun starts when a host name does not resolve, or its ssh port (mpirun starts
// its daemons through ssh; TESSEL_LAUNCH_SSH_PORT, 0 to skip) does not answer: mpirun's own
// report of an unreachable node is a page of daemon errors, after a long wait.
std::string ssh_port() {
  const char* port_env = std::getenv("TESSEL_LAUNCH_SSH_PORT");
  return port_env != nullptr ? port_env : "22";
}

// Whether `host` resolves and answers on its ssh port within 3 s (always, for this machine or
// with TESSEL_LAUNCH_SSH_PORT=0); *error says why not.
bool host_answers(const std::string& host, std::string* error) {
  if (is_local(host)) return true;
  const std::string port = ssh_port();
  addrinfo hints = {};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* info = nullptr;
  const int rc = getaddrinfo(host.c_str(), port == "0" ? nullptr : port.c_str(), &hints, &info);
  if (rc != 0) {
    *error = std::string("cannot be resolved: ") + gai_strerror(rc) + "; hint: check the name, or give its IP address";
    return false;
  }
  std::string why;
  const bool ok = port == "0" || connects(info, 3000, &why);
  freeaddrinfo(info);
  if (!ok) {
    *error = "is not reachable on its ssh port " + port + " (" + why +
             "); mpirun starts its daemons there through ssh; hint: check that the node is up and runs sshd "
             "(TESSEL_LAUNCH_SSH_PORT sets another port, 0 skips this check)";
  }
  return ok;
}

void check_hosts_reachable(const std::vector<std::string>& hosts, const std::string& from) {
  for (const std::string& host : hosts) {
    std::string error;
    TESSEL_CHECK(host_answers(host, &error)) << "host '" << host << "' (from " << from << ") " << error;
  }
}

// The signals that ask `tessel launch` to stop: SIGINT, SIGTERM, and SIGUSR1 (Slurm's warning
// before a time limit). The launcher keeps them blocked from its pre-flight on and takes them
// itself; the programs it starts get them unblocked.
sigset_t stop_signals() {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGINT);
  sigaddset(&s, SIGTERM);
  sigaddset(&s, SIGUSR1);
  return s;
}
const char* stop_signal_name(int sig) { return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "SIGUSR1"; }

// Runs argv (found on PATH) with stdin empty, its stdout captured into *out and its stderr into
// *err, for at most timeout_s seconds; returns its exit status, or -1 when it ran out of time
// and was killed (with what it started). Ends when the program exits, even if something it
// started keeps the pipes open.
int run_captured(const std::vector<std::string>& argv, int timeout_s, std::string* out, std::string* err) {
  int pipes[2][2];
  TESSEL_CHECK(pipe(pipes[0]) == 0 && pipe(pipes[1]) == 0) << "tessel launch: pipe failed: " << std::strerror(errno);
  const pid_t child = fork();
  TESSEL_CHECK(child >= 0) << "tessel launch: fork failed: " << std::strerror(errno);
  if (child == 0) {
    const sigset_t stops = stop_signals();
    sigprocmask(SIG_UNBLOCK, &stops, nullptr);
    setpgid(0, 0);  // its own group: a timeout kills what it started too
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    const int null = open("/dev/null", O_RDONLY);
    dup2(null, 0);
    close(null);
    dup2(pipes[0][1], 1);
    dup2(pipes[1][1], 2);
    for (auto& p : pipes) close(p[0]), close(p[1]);
    std::vector<char*> cargv;
    for (const std::string& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
    cargv.push_back(nullptr);
    execvp(cargv[0], cargv.data());
    std::fprintf(stderr, "cannot run %s: %s\n", cargv[0], std::strerror(errno));
    _exit(127);
  }
  for (auto& p : pipes) close(p[1]);
  std::string* sinks[2] = {out, err};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  int status = 0;
  bool exited = false;
  char buffer[4096];
  // Reads what is there now from both pipes, waiting at most wait_ms for it.
  const auto drain = [&](int wait_ms) {
    pollfd p[2] = {{pipes[0][0], POLLIN, 0}, {pipes[1][0], POLLIN, 0}};
    if (poll(p, 2, wait_ms) <= 0) return;
    for (int k = 0; k < 2; ++k) {
      if ((p[k].revents & POLLIN) == 0) continue;
      const ssize_t got = read(pipes[k][0], buffer, sizeof(buffer));
      if (got > 0) sinks[k]->append(buffer, static_cast<size_t>(got));
    }
  };
  while (!exited && std::chrono::steady_clock::now() < deadline) {
    drain(100);
    exited = waitpid(child, &status, WNOHANG) == child;
  }
  if (exited) {
    drain(0);
  } else {
    kill(-child, SIGKILL);
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
  }
  for (auto& p : pipes) close(p[0]);
  if (!exited) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Before mpirun starts: every other host runs the same Tessel build at the same path, asked
// through the command mpirun starts its daemons with (OMPI_MCA_plm_rsh_agent, else ssh, in
// batch mode so that it never waits for a password). A host that runs another build, or none,
// or does not answer in 30 s is named with what it said. The version line is looked for among
// the lines on stdout (a login banner or ssh's warnings on stderr do not matter).
void check_remote_builds(const std::vector<std::string>& hosts, const std::string& from, const std::string& tessel,
                         const EnvLookup& env) {
  std::vector<std::string> agent = {"ssh"};
  if (const char* a = env("OMPI_MCA_plm_rsh_agent"); a != nullptr && *a != '\0') {
    std::stringstream words(std::string(a).substr(0, std::string(a).find(':')));
    agent.clear();
    for (std::string w; words >> w;) agent.push_back(w);
    if (agent.empty()) agent = {"ssh"};
  }
  const std::string program = agent[0].substr(agent[0].rfind('/') + 1);
  if (program == "ssh") agent.insert(agent.begin() + 1, {"-o", "BatchMode=yes", "-o", "ConnectTimeout=10"});
  const std::string mine = tessel_version_line();
  for (const std::string& host : hosts) {
    if (is_local(host)) continue;
    std::vector<std::string> argv = agent;
    argv.insert(argv.end(), {host, tessel, "--version"});
    std::string out, err;
    const int status = run_captured(argv, 30, &out, &err);
    const auto trimmed = [](std::string s) {
      while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
      return s;
    };
    TESSEL_CHECK(status != -1) << "host '" << host << "' (from " << from << ") did not answer `" << shell_join(argv)
                               << "` within 30 s; hint: check that passwordless ssh to it works";
    TESSEL_CHECK(status == 0) << "host '" << host << "' (from " << from << ") cannot run " << tessel << " (`"
                              << shell_join(argv) << "` exited with " << status << ": " << trimmed(err + out)
                              << "); hint: install Tessel at the same path on every host, and check "
                              << "passwordless ssh to it";
    std::stringstream lines(out);
    std::string line, last;
    bool same = false;
    while (std::getline(lines, line)) {
      line = trimmed(line);
      if (line.empty()) continue;
      last = line;
      same = same || line == mine;
    }
    TESSEL_CHECK(same) << "host '" << host << "' (from " << from << ") runs " << last << " at " << tessel
                       << ", but this launcher is " << mine
                       << "; hint: install the same build at the same path on every host";
  }
}

std::string find_on_path(const std::string& name, const EnvLookup& env) {
  const char* path = env("PATH");
  std::stringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

}  // namespace

std::string tessel_executable() {
  char self[4096];
  const ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
  TESSEL_CHECK(len > 0) << "tessel: cannot find its own executable (/proc/self/exe)";
  return std::string(self, static_cast<size_t>(len));
}

std::string shell_join(const std::vector<std::string>& argv) {
  std::string out;
  for (const std::string& a : argv) {
    if (!out.empty()) out += ' ';
    const bool plain =
        !a.empty() && a.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%") ==
                          std::string::npos;
    if (plain) {
      out += a;
      continue;
    }
    out += '\'';
    for (char c : a) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    out += '\'';
  }
  return out;
}

LaunchPlan plan_launch(const LaunchRequest& r, const ParallelConfig& parallel, const LaunchHost& host) {
  TESSEL_CHECK(!host.mpirun.empty())
      << "tessel launch needs OpenMPI's mpirun, which is not on PATH; hint: install it (Debian: openmpi-bin, "
      << "which scripts/setup.sh installs), or start the ranks yourself with srun or mpirun";
  TESSEL_CHECK(r.hosts.empty() || r.hostfile.empty()) << "give --hosts or --hostfile, not both";
  TESSEL_CHECK(r.min_hosts == 0 || !r.hosts.empty() || !r.hostfile.empty())
      << "--min-hosts needs the hosts listed (--hosts or --hostfile): it restarts a job on those that remain";
  LaunchPlan plan;
  std::vector<std::string> hosts = r.hosts;
  const bool slurm = host.env("SLURM_JOB_ID") != nullptr && r.hosts.empty() && r.hostfile.empty();
  if (!r.hostfile.empty()) hosts = hostfile_hosts(r.hostfile);
  std::set<std::string> unique(hosts.begin(), hosts.end());
  TESSEL_CHECK(unique.size() == hosts.size())
      << "a host is named twice in " << (r.hostfile.empty() ? "--hosts" : r.hostfile)
      << "; hint: name each node once and set --nproc-per-node";
  if (slurm) {
    const char* nnodes = host.env("SLURM_NNODES");
    plan.nodes = nnodes != nullptr ? std::max(1, std::atoi(nnodes)) : 1;
    plan.where = "the Slurm allocation (" + std::to_string(plan.nodes) + " nodes)";
  } else if (!hosts.empty()) {
    plan.nodes = static_cast<int>(hosts.size());
    plan.where = r.hostfile.empty() ? "hosts " + shell_join(hosts) : "hostfile " + r.hostfile;
  } else {
    plan.where = "this node";
  }
  TESSEL_CHECK(r.min_hosts <= plan.nodes) << "--min-hosts " << r.min_hosts << " is more than the " << plan.nodes
                                          << " host(s) given; hint: at most " << plan.nodes;

  // Ranks per node: asked for, or Slurm's, or what the config's grid needs.
  const int64_t grid = parallel.tp * parallel.pp;
  int n = r.nproc_per_node;
  if (n == 0 && slurm && host.env("SLURM_NTASKS_PER_NODE") != nullptr) n = std::atoi(host.env("SLURM_NTASKS_PER_NODE"));
  if (n == 0) {
    const int64_t world = parallel.dp > 0 ? grid * parallel.dp : grid;
    n = static_cast<int>(std::max<int64_t>(1, world / plan.nodes));
  }
  TESSEL_CHECK(n >= 1) << "--nproc-per-node must be at least 1, got " << n;
  plan.nproc_per_node = n;
  if (!r.hostfile.empty()) {
    for (const HostfileEntry& e : hostfile_entries(r.hostfile)) {
      TESSEL_CHECK(e.slots == 0 || e.slots >= n)
          << r.hostfile << ":" << e.line << ": host " << e.name << " has slots=" << e.slots << ", but " << n
          << " ranks go on each host (--nproc-per-node); hint: run at most " << e.slots
          << " per node, or raise its slots if it has the cores";
    }
  }
  if (slurm && host.env("SLURM_NTASKS") != nullptr) {
    const int64_t tasks = std::atoll(host.env("SLURM_NTASKS"));
    TESSEL_CHECK(static_cast<int64_t>(n) * plan.nodes <= tasks)
        << "the Slurm allocation has " << tasks << " task(s) on " << plan.nodes << " node(s) (SLURM_NTASKS), but " << n
        << " ranks per node need " << static_cast<int64_t>(n) * plan.nodes
        << "; hint: allocate more (sbatch --nodes/--ntasks-per-node), or set --nproc-per-node";
  }
  const int64_t world = static_cast<int64_t>(n) * plan.nodes;
  TESSEL_CHECK(world % grid == 0) << plan.nodes << " node(s) x " << n << " ranks = " << world << " ranks on "
                                  << plan.where << ", which is not divisible by parallel.tp (" << parallel.tp
                                  << ") x parallel.pp (" << parallel.pp << ") = " << grid
                                  << "; hint: set --nproc-per-node so that nodes x N is a multiple of " << grid;
  TESSEL_CHECK(parallel.dp == 0 || world == grid * parallel.dp)
      << plan.nodes << " node(s) x " << n << " ranks = " << world << " ranks on " << plan.where
      << ", but parallel.tp x pp x dp = " << parallel.tp << " x " << parallel.pp << " x " << parallel.dp << " = "
      << grid * parallel.dp << "; hint: set parallel.dp=auto, or launch " << grid * parallel.dp << " ranks";

  // Threads: the user's OMP_NUM_THREADS, else this node's cores shared by its ranks.
  const char* user_threads = host.env("OMP_NUM_THREADS");
  plan.threads_per_rank =
      user_threads != nullptr && std::atoi(user_threads) > 0 ? std::atoi(user_threads) : std::max(1, host.cores / n);

  std::vector<std::string>& a = plan.argv;
  a = {host.mpirun};
  if (host.root) a.push_back("--allow-run-as-root");
  a.insert(a.end(), {"-np", std::to_string(world)});
  if (n > host.cores) a.push_back("--oversubscribe");
  // Each rank runs OpenMP threads and a communication thread: let the OS place them rather
  // than pinning a rank's threads to one core.
  a.insert(a.end(), {"--bind-to", "none"});
  if (!slurm && !r.hosts.empty()) {
    std::string list;
    for (const std::string& h : hosts) list += (list.empty() ? "" : ",") + h + ":" + std::to_string(n);
    a.insert(a.end(), {"--host", list});
  } else if (!r.hostfile.empty()) {
    a.insert(a.end(), {"--hostfile", r.hostfile});
  }
  if (plan.nodes > 1 || slurm) a.insert(a.end(), {"--map-by", "ppr:" + std::to_string(n) + ":node"});
  a.insert(a.end(), {"-x", "OMP_NUM_THREADS=" + std::to_string(plan.threads_per_rank)});
  std::set<std::string> forwarded;
  for (const char* name : kForwarded) {
    if (host.env(name) != nullptr) forwarded.insert(name);
  }
  for (const std::string& name : host.env_names) {
    for (const char* prefix : kForwardedPrefixes) {
      if (name.rfind(prefix, 0) == 0) forwarded.insert(name);
    }
  }
  for (const std::string& name : forwarded) a.insert(a.end(), {"-x", name});
  for (const std::string& var : r.env) a.insert(a.end(), {"-x", var});
  a.insert(a.end(), {host.tessel, "train", r.config});
  if (!r.overrides.empty()) {
    a.push_back("--set");
    a.insert(a.end(), r.overrides.begin(), r.overrides.end());
  }
  return plan;
}

namespace {

// Runs argv, forwarding SIGINT, SIGTERM and SIGUSR1 to it; returns its exit status (128 +
// signal when a signal ended it). *signalled: whether the launcher was asked to stop. `watch`
// is asked about once a second; when it says so, the child's process group is killed (mpirun
// can wait forever on the daemon of a host that is gone).
int run_supervised(const std::vector<std::string>& argv, bool* signalled, const std::function<bool()>& watch) {
  *signalled = false;
  const sigset_t signals = stop_signals();
  sigset_t previous;
  sigprocmask(SIG_BLOCK, &signals, &previous);  // delivered to the loop below, not the default handler
  const pid_t child = fork();
  TESSEL_CHECK(child >= 0) << "tessel launch: fork failed: " << std::strerror(errno);
  if (child == 0) {
    sigprocmask(SIG_UNBLOCK, &signals, nullptr);
    // Its own process group: a terminal's Ctrl-C reaches only the launcher, which decides
    // what mpirun gets. And if the launcher dies (even by SIGKILL), the job stops too.
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    std::vector<char*> cargv;
    for (const std::string& s : argv) cargv.push_back(const_cast<char*>(s.c_str()));
    cargv.push_back(nullptr);
    execv(cargv[0], cargv.data());
    std::fprintf(stderr, "tessel launch: cannot run %s: %s\n", cargv[0], std::strerror(errno));
    _exit(127);
  }
  int status = 0;
  auto next_watch = std::chrono::steady_clock::now();
  bool killed = false;
  for (;;) {
    const pid_t done = waitpid(child, &status, WNOHANG);
    if (done == child) break;
    if (watch && !killed && std::chrono::steady_clock::now() >= next_watch) {
      next_watch += std::chrono::seconds(1);
      if (watch()) {
        kill(-child, SIGKILL);
        killed = true;
      }
    }
    if (done < 0 && errno != EINTR) {
      status = 1 << 8;  // the child cannot be waited for: report failure
      break;
    }
    timespec wait = {0, 100 * 1000 * 1000};
    siginfo_t info;
    const int sig = sigtimedwait(&signals, &info, &wait);
    if (sig <= 0) continue;
    // The first SIGINT/SIGTERM asks the ranks to save a checkpoint and stop (SIGUSR1, which
    // mpirun passes on to every rank); a second one stops the job at once. SIGUSR1 (Slurm's
    // warning before a time limit, sbatch --signal=B:USR1@120) only ever asks for the stop.
    const char* name = stop_signal_name(sig);
    if (!*signalled || sig == SIGUSR1) {
      std::fprintf(stderr, "tessel launch: %s received: the ranks save a checkpoint and stop%s\n", name,
                   sig == SIGUSR1 ? "" : " (send it again to stop at once)");
      kill(child, SIGUSR1);
    } else {
      std::fprintf(stderr, "tessel launch: %s received again: stopping the job now\n", name);
      kill(child, sig);
    }
    *signalled = true;
  }
  sigprocmask(SIG_SETMASK, &previous, nullptr);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

}  // namespace

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

int launch_job(const LaunchRequest& r, const Config& config) {
  LaunchHost host;
  host.env = [](const char* name) { return static_cast<const char*>(std::getenv(name)); };
  host.tessel = tessel_executable();
  host.mpirun = find_on_path("mpirun", host.env);
  host.cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  host.root = geteuid() == 0;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string var(*e);
    host.env_names.push_back(var.substr(0, var.find('=')));
  }
  const LaunchPlan plan = plan_launch(r, config.parallel, host);
  {
    // The grid and the pipeline schedule are checked here too, so that a layout every rank
    // would refuse is one clear error before any rank starts.
    const Topology grid = Topology::from_config(config.parallel, plan.nodes * plan.nproc_per_node, 0);
    const std::vector<int64_t> micro_batches = micro_batches_per_replica(config.batch, grid.size(Axis::kDp));
    for (int64_t m : grid.size(Axis::kPp) > 1 ? micro_batches : std::vector<int64_t>{}) {
      build_pipeline_schedule(config.parallel.schedule, grid.size(Axis::kPp),
                              static_cast<int>(config.parallel.virtual_stages), static_cast<int>(m));
    }
  }
  if (r.dry_run) {
    std::printf("%s\n", shell_join(plan.argv).c_str());
    return 0;
  }
  // From here a stop signal never ends the launcher by its default action: during a job it is
  // passed on (run_supervised); before the job starts, or between a failure and the restart, it
  // means no (further) attempt starts.
  const sigset_t stops = stop_signals();
  sigprocmask(SIG_BLOCK, &stops, nullptr);
  const auto stop_asked = [&stops] {
    siginfo_t info;
    const timespec now = {0, 0};
    return sigtimedwait(&stops, &info, &now);
  };
  const std::string from = r.hostfile.empty() ? "--hosts" : r.hostfile;
  const std::vector<std::string> hosts = r.hosts.empty() && !r.hostfile.empty() ? hostfile_hosts(r.hostfile) : r.hosts;
  check_hosts_reachable(hosts, from);
  check_remote_builds(hosts, from, host.tessel, host.env);

  // Each attempt's ranks beat into the run's directory (train/heartbeat.h): a failure is seen
  // there even when mpirun cannot end the job (it waits on the daemon of a host that is gone),
  // and the ranks that stopped first are named.
  // Each attempt beats into a directory of its own (TESSEL_HEARTBEAT_DIR), so that another
  // launch of the same run directory never mixes its beats with these.
  char self[256] = {};
  gethostname(self, sizeof(self) - 1);
  const std::string job_id = std::string(self) + "-" + std::to_string(getpid());
  const std::string beats_root = fs::absolute(heartbeat_dir(config.run.out_dir)).string();
  constexpr double kGraceS = 5;  // after a rank's failure, mpirun's time to end the job
  constexpr double kStaleS = 3;  // beats (1 s apart) this much older than the failure: stopped
  const double job_start = epoch_seconds();
  LaunchRequest current = r;  // with fewer hosts after a restart without the lost ones
  ParallelConfig parallel = config.parallel;
  std::vector<std::string> live_hosts = hosts;
  std::vector<std::string> restart_env;  // what a restarted attempt learns of the failure
  for (int attempt = 0;; ++attempt) {
    if (const int sig = stop_asked(); sig > 0) {
      // Nothing runs: the newest checkpoint stands, for a requeued job to resume from. SIGINT
      // (Ctrl-C) is a user's stop and ends as one; SIGTERM and SIGUSR1 end as a clean stop does.
      spdlog::warn("{} received before the job {}: not starting it; a resume continues from the newest checkpoint",
                   stop_signal_name(sig), attempt == 0 ? "started" : "restarted");
      return sig == SIGINT ? 128 + SIGINT : 0;
    }
    const std::string beats_dir = beats_root + "/" + job_id + "-" + std::to_string(attempt);
    LaunchRequest a = current;
    a.env = restart_env;
    a.env.push_back("TESSEL_HEARTBEAT_DIR=" + beats_dir);
    const LaunchPlan attempt_plan = plan_launch(a, parallel, host);
    if (attempt == 0) {
      spdlog::info("launching {} ranks on {} ({} per node, {} threads each): {}",
                   attempt_plan.nodes * attempt_plan.nproc_per_node, attempt_plan.where, attempt_plan.nproc_per_node,
                   attempt_plan.threads_per_rank, shell_join(attempt_plan.argv));
    }
    std::error_code ec;
    fs::remove_all(beats_dir, ec);
    bool signalled = false;
    double failure_seen = 0;
    JobWatch watch(kStaleS);
    const int status = run_supervised(attempt_plan.argv, &signalled, [&] {
      watch.observe(read_heartbeats(beats_dir));
      const JobHealth& h = watch.health();
      if (!h.failed) return false;
      const double now = epoch_seconds();
      if (failure_seen == 0) failure_seen = now;
      if (now - failure_seen < kGraceS) return false;
      spdlog::error(
          "a rank failed {:.0f} s ago and mpirun has not ended the job (a host that is gone holds it "
          "up): stopping it",
          now - failure_seen);
      return true;
    });
    const std::vector<RankBeat> beats = read_heartbeats(beats_dir);
    fs::remove_all(beats_dir, ec);
    if (status == 0) return 0;
    const double ended = epoch_seconds();
    // mpirun's daemons put every rank in a process group of its own: a rank of this host that
    // outlived the job (stopped, or hung in the kernel) still holds the run's lock and memory.
    for (const RankBeat& b : beats) {
      if (b.host != self || b.pid <= 1) continue;
      std::ifstream proc("/proc/" + std::to_string(b.pid) + "/cmdline");
      const std::string cmdline((std::istreambuf_iterator<char>(proc)), std::istreambuf_iterator<char>());
      if (cmdline.find("tessel") != std::string::npos && kill(static_cast<pid_t>(b.pid), SIGKILL) == 0)
        spdlog::warn("rank {} (pid {}) outlived the job: killed", b.rank, b.pid);
    }
    watch.observe(beats);
    const JobHealth health = job_health(beats);
    // Ranks report the host name they see; the hosts were named in --hosts/--hostfile, N ranks
    // each in order: probe those names.
    std::map<std::string, std::string> listed;
    for (const RankBeat& b : beats) {
      const size_t i = static_cast<size_t>(b.rank / attempt_plan.nproc_per_node);
      if (i < live_hosts.size()) listed[b.host] = live_hosts[i];
    }
    // Which hosts still answer, asked once (up to 3 s each).
    std::map<std::string, bool> answers;
    const auto answering = [&](const std::string& h) {
      auto it = answers.find(h);
      if (it == answers.end()) {
        std::string error;
        it = answers.emplace(h, host_answers(h, &error)).first;
      }
      return it->second;
    };
    // Probed only for hosts listed (--hosts/--hostfile): on one node, or in a Slurm allocation,
    // there is nothing to leave out and the nodes need not run sshd.
    std::function<bool(const std::string&)> probe;
    if (!live_hosts.empty()) {
      probe = [&](const std::string& h) {
        const auto it = listed.find(h);
        return answering(it != listed.end() ? it->second : h);
      };
    }
    std::vector<std::string> lost;
    const std::string report = beats.empty() ? ""
                                             : describe_failure(beats, attempt_plan.nodes * attempt_plan.nproc_per_node,
                                                                watch, kStaleS, probe, &lost);
    spdlog::error("the job failed with exit status {}{}{}", status, report.empty() ? "" : ": " + report,
                  attempt_plan.nodes > 1 && report.empty()
                      ? "; if a node could not be reached, check passwordless ssh to it and that tessel is at the "
                        "same path there"
                      : "");
    if (signalled || attempt >= r.max_restarts) return status;

    // The next attempt's hosts: those that still answer. Going on with fewer takes --min-hosts;
    // the global batch stays, so fewer data-parallel replicas take more micro-batches each.
    std::vector<std::string> remaining;
    for (const std::string& h : live_hosts) {
      if (answering(h)) {
        remaining.push_back(h);
      } else if (std::find(lost.begin(), lost.end(), h) == lost.end()) {
        lost.push_back(h);
      }
    }
    if (!live_hosts.empty() && remaining.size() < live_hosts.size()) {
      const int n = attempt_plan.nproc_per_node;
      const int64_t grid = parallel.tp * parallel.pp;
      const int64_t dp = static_cast<int64_t>(remaining.size()) * n / grid;
      if (r.min_hosts == 0 || static_cast<int>(remaining.size()) < r.min_hosts) {
        spdlog::error("not restarting: {} of {} hosts answer (lost: {}){}", remaining.size(), live_hosts.size(),
                      shell_join(lost),
                      r.min_hosts == 0 ? "; hint: --min-hosts K restarts on the hosts that remain when K or more do"
                                       : ", fewer than --min-hosts " + std::to_string(r.min_hosts));
        return status;
      }
      if (static_cast<int64_t>(remaining.size()) * n % grid != 0 || dp < 1 ||
          config.batch.global % (dp * config.batch.micro) != 0 || dp % config.parallel.ep != 0 ||
          !config.batch.shares.empty()) {
        spdlog::error(
            "not restarting on the {} hosts that remain: {} ranks do not make whole replicas of tp x pp = "
            "{} whose micro-batches divide batch.global ({}) over dp {}, with parallel.ep ({}) dividing dp "
            "and no batch.shares",
            remaining.size(), remaining.size() * n, grid, config.batch.global, dp, config.parallel.ep);
        return status;
      }
      spdlog::warn("restarting without {}: {} hosts, dp {} -> {} ({} micro-batches of accumulation per replica)",
                   shell_join(lost), remaining.size(), parallel.dp > 0 ? std::to_string(parallel.dp) : "auto", dp,
                   config.batch.global / (dp * config.batch.micro));
      live_hosts = remaining;
      current.hosts = remaining;
      current.hostfile.clear();
      current.nproc_per_node = n;
      parallel.dp = dp;
      current.overrides.push_back("parallel.dp=" + std::to_string(dp));
    }
    // A restarted job continues from the newest complete checkpoint, and learns what it lost.
    if (attempt == 0) current.overrides.push_back("checkpoint.resume=auto");
    char failed_at[32];
    std::snprintf(failed_at, sizeof(failed_at), "%.3f", health.failed ? health.failed_at : ended);
    char started[32];
    std::snprintf(started, sizeof(started), "%.3f", job_start);
    restart_env = {"TESSEL_RESTARTS=" + std::to_string(attempt + 1), std::string("TESSEL_FAILED_AT=") + failed_at,
                   "TESSEL_FAILED_STEP=" + std::to_string(health.last_step),
                   std::string("TESSEL_JOB_START=") + started};
    spdlog::warn("restarting the job ({} of --max-restarts {}) from the newest complete checkpoint", attempt + 1,
                 r.max_restarts);
  }
}

}  // namespace tessel
