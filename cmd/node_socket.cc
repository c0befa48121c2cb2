#include "cmd/node_socket.h"

#include "cmd/control_socket.h"

namespace quid {

std::string NodeSocketPath(const std::string& home) {
  return home + "/" + kNodeSocketName;
}

Result<nlohmann::json> NodeRequest(const std::string& home, const nlohmann::json& request,
                                   int timeout_ms) {
  const std::string path = NodeSocketPath(home);
  Result<std::string> line = ControlRequest(path, request.dump(), timeout_ms);
  if (!line.ok()) {
    if (line.status().code() == Code::kUnavailable)
      return Status::Unavailable("no node daemon answers on " + path +
                                 " (start it with quid serve --home " + home + " ...)");
    return line.status();
  }
  nlohmann::json reply = nlohmann::json::parse(*line, nullptr, false);
  if (reply.is_discarded() || !reply.is_object())
    return Status::IoError("the node daemon answered something that is not JSON");
  if (reply.contains("error")) return Status::Invalid(reply["error"].get<std::string>());
  return reply;
}

}  // namespace quid
