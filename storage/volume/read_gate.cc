#include "storage/volume/read_gate.h"

namespace quid {

ReadGate::Ticket& ReadGate::Ticket::operator=(Ticket&& other) noexcept {
  if (this != &other) {
    Leave();
    gate_ = other.gate_;
    epoch_ = other.epoch_;
    other.gate_ = nullptr;
  }
  return *this;
}

void ReadGate::Ticket::Leave() {
  if (gate_) gate_->Leave(epoch_);
  gate_ = nullptr;
}

ReadGate::Ticket ReadGate::Enter() {
  std::lock_guard lock(mu_);
  active_[epoch_]++;
  return Ticket(this, epoch_);
}

uint64_t ReadGate::Close() {
  std::lock_guard lock(mu_);
  return ++epoch_;
}

bool ReadGate::Drained(uint64_t gate) const {
  std::lock_guard lock(mu_);
  return active_.empty() || active_.begin()->first >= gate;
}

void ReadGate::Leave(uint64_t epoch) {
  std::lock_guard lock(mu_);
  auto it = active_.find(epoch);
  if (it != active_.end() && --it->second == 0) active_.erase(it);
}

}  // namespace quid
