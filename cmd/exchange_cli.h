// What the exchange's commands share (cmd_exchange.cc, cmd_lease.cc): asking the node
// daemon of a home, and reading a --ratio.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

#include "storage/base/status.h"

namespace quid {

std::string HomeFlagHelp();
// R as given (1, 1.5, 2:1): thousandths of what this node gives per byte it receives.
Result<uint32_t> ParseRatio(const std::string& text);
// Sends `request` to the node daemon of the home `home_flag` names (or the default home).
Result<nlohmann::json> Ask(const std::string& home_flag, const nlohmann::json& request,
                           int timeout_ms);

}  // namespace quid
