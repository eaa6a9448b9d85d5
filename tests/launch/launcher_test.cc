// The mpirun command tessel launch builds, for each way of placing ranks.
#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <map>

#include "core/error.h"
#include "core/io/temp_dir.h"
#include "launch/launcher.h"

using namespace tessel;

namespace {

struct Env {
  std::map<std::string, std::string> vars;
  EnvLookup lookup() const {
    return [this](const char* name) -> const char* {
      auto it = vars.find(name);
      return it == vars.end() ? nullptr : it->second.c_str();
    };
  }
};

LaunchHost machine(const Env& env, int cores = 8, bool root = false) {
  LaunchHost h;
  h.tessel = "/opt/tessel";
  h.mpirun = "/usr/bin/mpirun";
  h.cores = cores;
  h.root = root;
  h.env = env.lookup();
  return h;
}

LaunchRequest request(int n) {
  LaunchRequest r;
  r.config = "c.yaml";
  r.overrides = {"run.steps=20"};
  r.nproc_per_node = n;
  return r;
}

bool has(const std::vector<std::string>& argv, const std::string& a) {
  return std::find(argv.begin(), argv.end(), a) != argv.end();
}

}  // namespace

TEST_CASE("one node: ranks, threads per rank, root and oversubscription", "[cpu][launch]") {
  Env env;
  ParallelConfig p;
  LaunchPlan plan = plan_launch(request(4), p, machine(env, 8, true));
  CHECK(shell_join(plan.argv) ==
        "/usr/bin/mpirun --allow-run-as-root -np 4 --bind-to none -x OMP_NUM_THREADS=2 /opt/tessel train c.yaml "
        "--set run.steps=20");
  CHECK(plan.threads_per_rank == 2);
  plan = plan_launch(request(4), p, machine(env, 2, false));
  CHECK(has(plan.argv, "--oversubscribe"));
  CHECK_FALSE(has(plan.argv, "--allow-run-as-root"));
  CHECK(plan.threads_per_rank == 1);
  env.vars["OMP_NUM_THREADS"] = "3";  // the user's choice wins
  env.vars["OPENBLAS_CORETYPE"] = "Haswell";
  LaunchHost h = machine(env);
  h.env_names = {"OMP_NUM_THREADS", "OPENBLAS_CORETYPE", "NCCL_DEBUG", "TESSEL_X", "OMPI_MCA_btl", "HOME"};
  plan = plan_launch(request(2), p, h);
  CHECK(has(plan.argv, "OMP_NUM_THREADS=3"));
  CHECK(has(plan.argv, "OPENBLAS_CORETYPE"));
  CHECK(has(plan.argv, "NCCL_DEBUG"));
  CHECK(has(plan.argv, "TESSEL_X"));
  CHECK(has(plan.argv, "OMPI_MCA_btl"));
  CHECK_FALSE(has(plan.argv, "HOME"));
}

TEST_CASE("several nodes from --hosts, a hostfile, or the Slurm allocation", "[cpu][launch]") {
  Env env;
  ParallelConfig p;
  LaunchRequest r = request(2);
  r.hosts = {"a", "b"};
  LaunchPlan plan = plan_launch(r, p, machine(env));
  CHECK(plan.nodes == 2);
  CHECK(shell_join(plan.argv).find("-np 4 --bind-to none --host a:2,b:2 --map-by ppr:2:node") != std::string::npos);

  TempDir dir("tessel_launch");
  const std::string hostfile = dir.path() + "/hosts";
  std::ofstream(hostfile) << "# nodes\nn01 slots=8\nn02 slots=8\n\n";
  r.hosts.clear();
  r.hostfile = hostfile;
  plan = plan_launch(r, p, machine(env));
  CHECK(plan.nodes == 2);
  CHECK(has(plan.argv, "--hostfile"));
  CHECK(has(plan.argv, "ppr:2:node"));

  env.vars = {{"SLURM_JOB_ID", "77"}, {"SLURM_NNODES", "3"}, {"SLURM_NTASKS_PER_NODE", "4"}};
  plan = plan_launch(request(0), p, machine(env));
  CHECK(plan.nodes == 3);
  CHECK(plan.nproc_per_node == 4);
  CHECK(shell_join(plan.argv).find("-np 12") != std::string::npos);
  CHECK_FALSE(has(plan.argv, "--host"));  // mpirun reads the allocation itself
}

TEST_CASE("launch errors: grid mismatch, bad hostfile, no mpirun", "[cpu][launch]") {
  Env env;
  ParallelConfig p;
  p.dp = 2;
  CHECK_THROWS_WITH(plan_launch(request(3), p, machine(env)),
                    Catch::Contains("parallel.tp x pp x dp = 1 x 1 x 2 = 2") && Catch::Contains("launch 2 ranks"));
  CHECK(plan_launch(request(0), p, machine(env)).nproc_per_node == 2);  // from the config
  p.dp = 0;
  p.tp = 2;
  CHECK_THROWS_WITH(plan_launch(request(3), p, machine(env)), Catch::Contains("not divisible by parallel.tp (2)"));
  LaunchRequest r = request(1);
  r.hostfile = "/nonexistent/hosts";
  CHECK_THROWS_WITH(plan_launch(r, ParallelConfig{}, machine(env)),
                    Catch::Contains("--hostfile /nonexistent/hosts: cannot be read"));
  r.hostfile.clear();
  r.hosts = {"a", "a"};
  CHECK_THROWS_WITH(plan_launch(r, ParallelConfig{}, machine(env)), Catch::Contains("named twice"));
  LaunchHost none = machine(env);
  none.mpirun.clear();
  CHECK_THROWS_WITH(plan_launch(request(2), ParallelConfig{}, none), Catch::Contains("openmpi-bin"));

  // A hostfile whose host has fewer slots than the ranks per node, or a bad slot count.
  TempDir dir("tessel-launch");
  r = request(4);
  r.hosts.clear();
  r.hostfile = dir.path() + "/hosts";
  std::ofstream(r.hostfile) << "n01 slots=8\nn02 slots=2 # small\n";
  CHECK_THROWS_WITH(plan_launch(r, ParallelConfig{}, machine(env)),
                    Catch::Contains("hosts:2: host n02 has slots=2, but 4 ranks go on each host"));
  std::ofstream(r.hostfile) << "n01 slots=many\n";
  CHECK_THROWS_WITH(plan_launch(r, ParallelConfig{}, machine(env)),
                    Catch::Contains("hosts:1: 'slots=many' for host n01 is not a slot count"));
  // --min-hosts above the hosts given, or without hosts listed.
  r.min_hosts = 3;
  std::ofstream(r.hostfile) << "n01 slots=8\nn02 slots=8\n";
  CHECK_THROWS_WITH(plan_launch(r, ParallelConfig{}, machine(env)),
                    Catch::Contains("--min-hosts 3 is more than the 2 host(s) given"));
  CHECK_THROWS_WITH(plan_launch(
                        [] {
                          LaunchRequest one = request(2);
                          one.min_hosts = 1;
                          return one;
                        }(),
                        ParallelConfig{}, machine(env)),
                    Catch::Contains("--min-hosts needs the hosts listed"));
  r.min_hosts = 0;
  // A Slurm allocation smaller than the layout.
  env.vars = {{"SLURM_JOB_ID", "77"}, {"SLURM_NNODES", "2"}, {"SLURM_NTASKS", "4"}, {"SLURM_NTASKS_PER_NODE", "2"}};
  ParallelConfig eight;
  eight.dp = 8;
  CHECK_THROWS_WITH(plan_launch(request(0), eight, machine(env)),
                    Catch::Contains("2 node(s) x 2 ranks = 4 ranks on the Slurm allocation (2 nodes)") &&
                        Catch::Contains("parallel.tp x pp x dp = 1 x 1 x 8 = 8"));
  CHECK_THROWS_WITH(plan_launch(request(4), ParallelConfig{}, machine(env)),
                    Catch::Contains("the Slurm allocation has 4 task(s) on 2 node(s) (SLURM_NTASKS), but 4 ranks per "
                                    "node need 8"));
}

TEST_CASE("shell_join quotes what a shell would split", "[cpu][launch]") {
  CHECK(shell_join({"a", "b c", "it's", "x=1"}) == "a 'b c' 'it'\\''s' x=1");
}
