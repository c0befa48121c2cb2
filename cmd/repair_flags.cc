#include "cmd/repair_flags.h"

#include <CLI/CLI.hpp>

#include <charconv>
#include <cmath>

#include "cmd/duration_parse.h"
#include "cmd/size_parse.h"

namespace quid {

void AddRepairFlags(CLI::App* app, RepairFlags* flags) {
  app->add_option("--host-grace", flags->host_grace,
                  "How long a host may be away before its shards are rebuilt elsewhere, e.g. "
                  "10m (default 1h); shorter absences cost no repair traffic")
      ->option_text("D");
  app->add_option("--repair-rate", flags->repair_rate,
                  "Repair traffic limit in MB/s, shards read plus written (default 50; 0: no "
                  "limit)")
      ->option_text("MBPS");
  app->add_option("--audit-budget", flags->audit_budget,
                  "Audit traffic per host per hour: samples of every shard, checked against "
                  "each other (default 64M; 0: no audits)")
      ->option_text("SIZE");
}

Status ApplyRepairFlags(const RepairFlags& flags, RepairPolicy* policy) {
  if (!flags.host_grace.empty()) {
    Result<int64_t> grace = ParseDuration(flags.host_grace);
    if (!grace.ok()) return Status::Invalid("--host-grace: " + grace.status().message());
    policy->host_grace_ns = *grace;
  }
  if (!flags.repair_rate.empty()) {
    double mbps = 0;
    const char* end = flags.repair_rate.data() + flags.repair_rate.size();
    auto [ptr, ec] = std::from_chars(flags.repair_rate.data(), end, mbps);
    if (ec != std::errc() || ptr != end || !std::isfinite(mbps) || mbps < 0)
      return Status::Invalid("--repair-rate: '" + flags.repair_rate +
                             "' is not a rate in MB/s (a number, 0 for no limit)");
    policy->rate_bytes_per_s = static_cast<uint64_t>(mbps * 1e6);
  }
  if (!flags.audit_budget.empty()) {
    Result<uint64_t> budget = ParseSize(flags.audit_budget);
    if (!budget.ok()) return Status::Invalid("--audit-budget: " + budget.status().message());
    policy->audit_bytes_per_host_hour = *budget;
  }
  return Status::Ok();
}

}  // namespace quid
