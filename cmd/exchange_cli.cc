#include "cmd/exchange_cli.h"

#include <cmath>
#include <stdexcept>

#include "cmd/home.h"
#include "cmd/node_socket.h"

namespace quid {

using nlohmann::json;

std::string HomeFlagHelp() {
  return "Home folder (default: $QUID_HOME, else ~/.local/share/quid)";
}

Result<uint32_t> ParseRatio(const std::string& text) {
  std::string t = text;
  double value = 0;
  const size_t colon = t.find(':');
  try {
    size_t used = 0;
    if (colon != std::string::npos) {
      const double a = std::stod(t.substr(0, colon), &used);
      const double b = std::stod(t.substr(colon + 1));
      if (b <= 0) throw std::invalid_argument("zero");
      value = a / b;
    } else {
      value = std::stod(t, &used);
      if (used != t.size()) throw std::invalid_argument("trailing");
    }
  } catch (const std::exception&) {
    return Status::Invalid("--ratio " + text + ": not a ratio (e.g. 1, 1.5 or 2:1)");
  }
  if (!(value > 0) || value > 1000)
    return Status::Invalid("--ratio " + text + ": needs a value above 0 and at most 1000");
  return static_cast<uint32_t>(std::lround(value * 1000));
}

Result<json> Ask(const std::string& home_flag, const json& request, int timeout_ms) {
  QUID_ASSIGN_OR_RETURN(std::string home, ResolveHome(home_flag));
  return NodeRequest(home, request, timeout_ms);
}

}  // namespace quid
