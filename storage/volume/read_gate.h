// ReadGate: keeps the shards of a dropped chunk alive until no read that could still see
// the chunk is in flight.
//
// A read works on one consistent version of a file: it takes a metadata snapshot (and the
// file's dirty pieces) under the namespace lock, then fetches chunks without any lock. A
// flush commit or an unlink may meanwhile drop the last reference to one of those chunks
// and put it on the to-delete list. Deleting its shards at once would make the read fail
// (or, worse, read zeros where the file has just become inline). So deletion is gated:
//
//   reader:   under the lock that orders commits, Enter() and take the snapshot; the
//             Ticket ends the read when destroyed.
//   deleter:  collect the to-delete rows, then Close() the gate; delete those rows' shards
//             only once Drained(gate): every read that entered before the gate is done.
//             A read that enters after Close() took its snapshot after the rows existed,
//             so it cannot reach their chunks.
//
// Reads are short (one FUSE request), so a closed gate drains quickly; the deleter polls
// instead of blocking, so a slow store never stalls the flusher.
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>

namespace quid {

class ReadGate {
 public:
  class Ticket {
   public:
    Ticket() = default;
    Ticket(ReadGate* gate, uint64_t epoch) : gate_(gate), epoch_(epoch) {}
    Ticket(Ticket&& other) noexcept : gate_(other.gate_), epoch_(other.epoch_) {
      other.gate_ = nullptr;
    }
    Ticket& operator=(Ticket&& other) noexcept;
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;
    ~Ticket() { Leave(); }
    void Leave();

   private:
    ReadGate* gate_ = nullptr;
    uint64_t epoch_ = 0;
  };

  // A read begins.
  Ticket Enter();
  // Starts a deletion gate; returns its number.
  uint64_t Close();
  // True once every read that entered before gate `gate` has ended.
  bool Drained(uint64_t gate) const;

 private:
  void Leave(uint64_t epoch);

  mutable std::mutex mu_;
  uint64_t epoch_ = 0;                   // bumped by Close()
  std::map<uint64_t, uint64_t> active_;  // epoch -> reads in flight that entered in it
};

}  // namespace quid
