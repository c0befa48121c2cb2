// The mount daemon's status as one line of JSON: what `quid status --json` prints and what
// the control socket carries, so scripts and the human table read the same numbers.
#pragma once

#include <string>
#include <string_view>

#include "storage/base/status.h"
#include "storage/volume/volume.h"

namespace quid {

struct DaemonStatus {
  std::string home;
  std::string mountpoint;
  VolumeStatus volume;
};

// One line, no newline at the end. Field names follow VolumeStatus's members.
std::string StatusToJson(const DaemonStatus& status);
// kCorrupt if `json` is not such a line.
Result<DaemonStatus> StatusFromJson(std::string_view json);

// `quid check`'s report, one line each way (the control socket's "report" line).
std::string CheckReportToJson(const CheckReport& report);
Result<CheckReport> CheckReportFromJson(std::string_view json);

}  // namespace quid
