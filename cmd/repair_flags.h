// The repair flags `quid mount` and `quid demo` share: --host-grace D, --repair-rate MBPS
// and --audit-budget SIZE.
#pragma once

#include <string>

#include "storage/base/status.h"
#include "storage/repair/repair_policy.h"

namespace CLI {
class App;
}

namespace quid {

struct RepairFlags {
  std::string host_grace;    // a duration ("1h", "10s"); empty: the default
  std::string repair_rate;   // MB/s (10^6 bytes), decimals allowed; 0: unlimited
  std::string audit_budget;  // a size per host per hour ("64M"); 0: no audits
};

void AddRepairFlags(CLI::App* app, RepairFlags* flags);
// Fills `policy` from the flags given, leaving the defaults for the others; kInvalid with
// the flag's name for a malformed or negative value.
Status ApplyRepairFlags(const RepairFlags& flags, RepairPolicy* policy);

}  // namespace quid
