#include "train/world.h"

#include <unistd.h>

#include <cstdlib>

#include <spdlog/spdlog.h>

#include "core/error.h"
#include "core/version.h"
#include "parallel/comm/mpi_communicator.h"
#include "parallel/comm/single_communicator.h"

namespace tessel {

World::World(double timeout_s) : identity_(rank_identity_from_environment()) {
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  if (identity_.world_size == 1) {
    comm_ = std::make_unique<SingleCommunicator>();
    placement_ = {{host}, {tessel_version_line()}};
    return;
  }
  runtime_ = std::make_unique<MpiRuntime>();
  TESSEL_CHECK(runtime_->world_size() == identity_.world_size && runtime_->world_rank() == identity_.rank)
      << "MPI sees rank " << runtime_->world_rank() << " of " << runtime_->world_size() << " but the "
      << identity_.source << " launcher variables say rank " << identity_.rank << " of " << identity_.world_size
      << "; hint: start the ranks with mpirun or tessel launch (or srun with OpenMPI's PMIx support)";
  comm_ = MpiCommunicator::world(*runtime_, timeout_s);
  placement_ = gather_rank_placement(*comm_, host, tessel_version_line());
  check_same_build(placement_);
  if (comm_->rank() == 0) spdlog::info("{} ranks on {}", comm_->size(), placement_.describe());
}

World::~World() {
  comm_.reset();  // before the runtime it runs on
}

int World::run_or_abort(const std::function<int()>& body, const std::function<std::string()>& records,
                        const std::function<void(const std::string&)>& on_failure) {
  if (!distributed()) return body();
  try {
    return body();
  } catch (const std::exception& e) {
    if (on_failure) on_failure(e.what());
    spdlog::error("rank {} failed: {}", comm_->rank(), e.what());
    spdlog::error("last collectives of rank {} (the first PENDING one is where it stopped):\n{}", comm_->rank(),
                  records ? records() : comm_->recorder().dump("  "));
    spdlog::default_logger()->flush();
    abort(1);
  }
}

void World::abort(int code) {
  if (runtime_) runtime_->abort(code);
  std::exit(code);
}

}  // namespace tessel
