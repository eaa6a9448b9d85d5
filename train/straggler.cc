#include "train/straggler.h"

#include "core/measure.h"

namespace tessel {

StragglerMonitor::StragglerMonitor(Communicator& world, std::vector<std::string> hosts, double threshold)
    : world_(world), hosts_(std::move(hosts)), threshold_(threshold) {}

StragglerMonitor::Report StragglerMonitor::gather() {
  const Tensor mine = Tensor::empty({1}, DType::F64);
  mine.data<double>()[0] = work_s_;
  const Tensor all = Tensor::empty({world_.size()}, DType::F64);
  world_.all_gather(mine, all);
  work_s_ = 0;
  const double* w = all.data<double>();
  std::vector<double> work(w, w + world_.size());
  Report r;
  for (int q = 1; q < world_.size(); ++q) {
    if (work[static_cast<size_t>(q)] > work[static_cast<size_t>(r.rank)]) r.rank = q;
  }
  const double mid = median(work);
  r.slowdown = mid > 0 ? work[static_cast<size_t>(r.rank)] / mid : 1.0;
  r.straggling = r.slowdown >= threshold_;
  if (static_cast<size_t>(r.rank) < hosts_.size()) r.host = hosts_[static_cast<size_t>(r.rank)];
  return r;
}

}  // namespace tessel
