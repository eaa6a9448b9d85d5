#include "parallel/pipeline_executor.h"

#include <algorithm>

#include "core/device_backend.h"
#include "core/error.h"
#include "core/measure.h"

namespace tessel {
ModelPart pipeline_model_part(int64_t layers, int pp, int v, int rank, const std::vector<PipeAction>& actions,
                              const LayerSplit& split) {
  const std::vector<std::pair<int, int>> stages = partition_layers(static_cast<int>(layers), pp, v, split);
  std::vector<int> alive(static_cast<size_t>(v), 0), peak(static_cast<size_t>(v), 1);
  for (const PipeAction& a : actions) {
    TESSEL_CHECK(a.chunk >= 0 && a.chunk < v) << "pipeline action on chunk " << a.chunk << " of " << v;
    int& live = alive[static_cast<size_t>(a.chunk)];
    live += a.kind == PipeAction::kForward ? 1 : -1;
    peak[static_cast<size_t>(a.chunk)] = std::max(peak[static_cast<size_t>(a.chunk)], live);
  }
  ModelPart part;
  for (int c = 0; c < v; ++c) {
    const std::pair<int, int>& range =
        stages[static_cast<size_t>(c) * static_cast<size_t>(pp) + static_cast<size_t>(rank)];
    part.chunks.push_back({range.first, range.second, peak[static_cast<size_t>(c)]});
  }
  part.embedding = rank == 0;
  part.head = rank == pp - 1;
  return part;
}

PipelineExecutor::PipelineExecutor(Transformer& model, Communicator& pp_group, std::vector<PipeAction> actions, int v,
                                   Communicator* gradient_group)
    : model_(model),
      group_(pp_group),
      gradients_(gradient_group != nullptr ? *gradient_group : pp_group),
      actions_(std::move(actions)),
      pp_(pp_group.size()),
      v_(v),
      rank_(pp_group.rank()),
      stages_(pp_group.size() * v),
      next_((rank_ + 1) % pp_),
      prev_((rank_ + pp_ - 1) % pp_) {
  TESSEL_CHECK(gradients_.size() == group_.size() && gradients_.rank() == group_.rank())
      << "pipeline gradient group: rank " << gradients_.rank() << " of " << gradients_.size() << ", but rank "
      << group_.rank() << " of " << group_.size() << " in the pipeline group";
  TESSEL_CHECK(model.num_chunks() == v) << "pipeline of " << v << " virtual stages over a model part of "
                                        << model.num_chunks() << " chunks";
  for (const PipeAction& a : actions_) micro_batches_ = std::max(micro_batches_, a.micro_batch + 1);
  const int64_t B = model.micro_batch(), T = model.seq_len();
  for (int c = 0; c < v_; ++c) {
    const size_t slots = model.part().chunks[static_cast<size_t>(c)].slots;
    tokens_.emplace_back();
    targets_.emplace_back();
    // A chunk that neither embeds nor computes the loss has undefined token tensors.
    for (size_t k = 0; k < slots; ++k) {
      tokens_.back().push_back(needs_tokens(c) ? Tensor::empty({B, T}, DType::I32) : Tensor());
      targets_.back().push_back(needs_tokens(c) ? Tensor::empty({B, T}, DType::I32) : Tensor());
    }
    output_sends_.emplace_back(slots);
  }
}

bool PipelineExecutor::needs_tokens(int chunk) const { return stage_of(chunk) == 0 || stage_of(chunk) == stages_ - 1; }

std::shared_ptr<Work>& PipelineExecutor::free_output(size_t chunk, int slot) {
  std::shared_ptr<Work>& pending = output_sends_[chunk][static_cast<size_t>(slot)];
  if (pending) pending->wait();  // the slot's previous output has left
  pending = nullptr;
  return pending;
}

void PipelineExecutor::receive(Communicator& link, const Tensor& into, int from_rank, int tag) {
  link.send_recv({{P2POp::kRecv, into, from_rank, tag}});
}

void PipelineExecutor::send(Communicator& link, const Tensor& what, int to_rank, int tag, std::shared_ptr<Work>* work) {
  *work = link.send_recv_async({{P2POp::kSend, what, to_rank, tag}});
}

PipelineExecutor::GradSend& PipelineExecutor::free_grad_send() {
  for (GradSend& g : grad_sends_) {
    if (g.work == nullptr || g.work->is_completed()) {
      if (g.work) g.work->wait();  // surfaces a failed send
      g.work = nullptr;
      return g;
    }
  }
  const Tensor& io = model_.grad_io();
  grad_sends_.push_back({empty_on(io.storage()->backend(), io.shape(), io.dtype()), nullptr});
  return grad_sends_.back();
}

void PipelineExecutor::wait_sends() {
  for (std::vector<std::shared_ptr<Work>>& chunk : output_sends_) {
    for (std::shared_ptr<Work>& w : chunk) {
      if (w) w->wait();
      w = nullptr;
    }
  }
  for (GradSend& g : grad_sends_) {
    if (g.work) g.work->wait();
    g.work = nullptr;
  }
}

double PipelineExecutor::train(const FillFn& fill, float grad_scale, const BeforeBackward& before_backward) {
  const auto t_step = SteadyClock::now();
  busy_s_ = 0;
  // Per chunk: free slots, and the slot of each micro-batch between forward and backward.
  std::vector<std::vector<int>> free_slots(static_cast<size_t>(v_));
  std::vector<std::vector<int>> slot_of(static_cast<size_t>(v_),
                                        std::vector<int>(static_cast<size_t>(micro_batches_), -1));
  for (int c = 0; c < v_; ++c) {
    for (int k = model_.part().chunks[static_cast<size_t>(c)].slots; k-- > 0;)
      free_slots[static_cast<size_t>(c)].push_back(k);
  }
  double loss = 0;
  for (const PipeAction& a : actions_) {
    const int c = a.chunk, stage = stage_of(c);
    const size_t ci = static_cast<size_t>(c);
    if (a.kind == PipeAction::kForward) {
      TESSEL_CHECK(!free_slots[ci].empty())
          << "pipeline rank " << rank_ << ": no free activation slot for the forward of micro-batch " << a.micro_batch
          << " on chunk " << c;
      const int slot = free_slots[ci].back();
      free_slots[ci].pop_back();
      slot_of[ci][static_cast<size_t>(a.micro_batch)] = slot;
      std::shared_ptr<Work>& pending = free_output(ci, slot);
      const Tensor& tokens = tokens_[ci][static_cast<size_t>(slot)];
      if (needs_tokens(c)) fill(a.micro_batch, tokens, targets_[ci][static_cast<size_t>(slot)]);
      if (stage > 0) receive(group_, model_.chunk_input(c, slot), prev_, 2 * stage);
      const auto t0 = SteadyClock::now();
      model_.forward_chunk(c, slot, tokens);
      busy_s_ += seconds_since(t0);
      if (stage + 1 < stages_) send(group_, model_.chunk_output(c, slot), next_, 2 * (stage + 1), &pending);
    } else {
      const int slot = slot_of[ci][static_cast<size_t>(a.micro_batch)];
      TESSEL_CHECK(slot >= 0) << "pipeline rank " << rank_ << ": backward of micro-batch " << a.micro_batch
                              << " on chunk " << c << " before its forward";
      if (stage + 1 < stages_) receive(gradients_, model_.grad_io(), next_, 2 * stage + 1);
      if (before_backward) before_backward(a);
      const auto t0 = SteadyClock::now();
      loss += model_.backward_chunk(c, slot, tokens_[ci][static_cast<size_t>(slot)],
                                    targets_[ci][static_cast<size_t>(slot)], grad_scale);
      busy_s_ += seconds_since(t0);
      if (stage > 0) {
        // grad_io is overwritten by the next backward: the send reads a copy.
        GradSend& g = free_grad_send();
        g.buffer.copy_from(model_.grad_io());
        send(gradients_, g.buffer, prev_, 2 * (stage - 1) + 1, &g.work);
      }
      slot_of[ci][static_cast<size_t>(a.micro_batch)] = -1;
      free_slots[ci].push_back(slot);
    }
  }
  wait_sends();
  step_s_ = seconds_since(t_step);
  return loss;
}

double PipelineExecutor::evaluate(int micro_batches, const FillFn& fill) {
  double loss = 0;
  // Micro-batch by micro-batch through the stages, each chunk on its slot 0: no schedule is
  // needed without backward.
  for (int mb = 0; mb < micro_batches; ++mb) {
    for (int c = 0; c < v_; ++c) {
      const size_t ci = static_cast<size_t>(c);
      const int stage = stage_of(c);
      std::shared_ptr<Work>& pending = free_output(ci, 0);
      if (needs_tokens(c)) fill(mb, tokens_[ci][0], targets_[ci][0]);
      if (stage > 0) receive(group_, model_.chunk_input(c, 0), prev_, 2 * stage);
      loss += model_.forward_loss_chunk(c, 0, tokens_[ci][0], targets_[ci][0]);
      if (stage + 1 < stages_) send(group_, model_.chunk_output(c, 0), next_, 2 * (stage + 1), &pending);
    }
  }
  wait_sends();
  return loss;
}

}  // namespace tessel
