#include "storage/exchange/standing.h"

#include <algorithm>
#include <cstdio>
#include <string>

#include "storage/exchange/lease.h"
#include "storage/exchange/notice.h"

namespace quid::exchange {
namespace {
constexpr uint64_t kMinCallsJudged = 100;
}  // namespace

Standing JudgeStanding(const Book& book, const PublicKey& self, const Peer& peer, int64_t now) {
  Standing s;
  PublicKey key{};
  std::copy_n(peer.key().begin(), std::min(peer.key().size(), key.size()), key.begin());
  s.ratio_permille = peer.ratio_permille() != 0 ? peer.ratio_permille() : kDefaultRatioPermille;
  s.reciprocal = peer.paired_by() != "tenant";
  s.observed_s = peer.first_seen() > 0 ? std::max<int64_t>(0, now - peer.first_seen()) : 0;
  s.uptime = peer.heartbeats_sent() == 0 ? 1.0
                                         : static_cast<double>(peer.heartbeats_answered()) /
                                               static_cast<double>(peer.heartbeats_sent());
  int64_t term_s = 0;
  uint32_t promised_uptime = 0;
  for (const LeaseEntry& entry : book.leases()) {
    Result<LeaseTerms> terms = DecodeTerms(entry.lease());
    if (!terms.ok() || !FullySigned(entry.lease())) continue;
    const bool gives = HostKey(*terms) == self && TenantKey(*terms) == key;
    const bool gets = HostKey(*terms) == key && TenantKey(*terms) == self;
    if (gives) s.given_bytes += CapacityPromised(entry, now);
    if (!gets) continue;
    uint64_t promised = CapacityPromised(entry, now);
    // Lapsed while the two were apart, with no notice: it renews when they meet, so it
    // still counts for one term (a partner away on holiday is not dropped).
    const LeaseState state = StateAt(entry, now);
    if (state == LeaseState::kExpired && !entry.has_notice() && terms->auto_renew() &&
        now < EndsAt(entry) + terms->term_s())
      promised = terms->capacity_bytes();
    s.received_bytes += promised;
    term_s = std::max(term_s, terms->term_s());
    promised_uptime = std::max(promised_uptime, terms->service().uptime_permille());
  }
  s.standing = "good";
  if (term_s == 0 || s.observed_s < term_s) s.standing = "new";
  // Puts and reads this node's volume made of the peer's host: a host that fails more than
  // a tenth of them (over enough calls to tell) does not keep its side.
  const uint64_t calls =
      peer.puts_ok() + peer.puts_failed() + peer.reads_ok() + peer.reads_failed();
  const uint64_t failed = peer.puts_failed() + peer.reads_failed();
  if (s.standing == "good" && calls >= kMinCallsJudged && failed * 10 > calls) {
    s.standing = "poor";
    s.why = "failed " + std::to_string(failed) + " of " + std::to_string(calls) + " puts and reads";
  }
  if (s.standing == "good" && promised_uptime > 0 && s.uptime * 1000 < promised_uptime) {
    s.standing = "poor";
    char line[128];
    std::snprintf(line, sizeof(line), "answered %.1f%% of heartbeats, promised %.1f%%",
                  s.uptime * 100, promised_uptime / 10.0);
    s.why = line;
  }
  // received x ratio / 1000 without overflow: capacities are far below 2^64 / 2^32 in
  // practice, but a peer's absurd lease must not wrap this to a small number.
  uint64_t allowed = 0;
  if (__builtin_mul_overflow(s.received_bytes, uint64_t{s.ratio_permille}, &allowed))
    allowed = UINT64_MAX;
  else
    allowed /= 1000;
  s.allowed_bytes = s.standing == "poor" ? 0 : allowed;
  if (!s.reciprocal) s.allowed_bytes = s.given_bytes;
  return s;
}

}  // namespace quid::exchange
