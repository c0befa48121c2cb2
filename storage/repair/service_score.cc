#include "storage/repair/service_score.h"

#include <algorithm>

namespace quid {

namespace {
constexpr double kPriorCalls = 20;
constexpr double kPriorAudits = 2;
constexpr double kMinScore = 0.01;

double Share(uint64_t ok, uint64_t failed, double prior) {
  const double good = prior + static_cast<double>(ok);
  return good / (good + static_cast<double>(failed));
}
}  // namespace

double ServiceScore(const ServiceRecord& r) {
  return std::max(kMinScore, Share(r.calls_ok, r.calls_failed, kPriorCalls) *
                                 Share(r.audits_ok, r.audits_failed, kPriorAudits));
}

bool Distrusted(const ServiceRecord& r) {
  return r.audits_failed >= 3 && r.audits_failed * 10 >= r.audits_ok + r.audits_failed;
}

double PlacementWeight(uint64_t capacity_bytes, uint64_t used_bytes, const ServiceRecord& record) {
  const double free_gib =
      static_cast<double>(capacity_bytes - std::min(used_bytes, capacity_bytes)) /
      static_cast<double>(1ull << 30);
  return std::max(free_gib, 1e-3) * ServiceScore(record);
}

}  // namespace quid
