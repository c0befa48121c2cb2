#include "cmd/status_json.h"

#include <nlohmann/json.hpp>

namespace quid {

using nlohmann::json;

namespace {

json RepairToJson(const RepairProgress& r) {
  return {{"chunks_left", r.chunks_left},
          {"bytes_left", r.bytes_left},
          {"chunks_done", r.chunks_done},
          {"bytes_done", r.bytes_done},
          {"chunks_failed", r.chunks_failed},
          {"shards_unplaced", r.shards_unplaced},
          {"bad_shards", r.bad_shards},
          {"eta_s", r.eta_s},
          {"rate_limit_bytes_per_s", r.rate_limit_bytes_per_s},
          {"host_grace_s", r.host_grace_s},
          {"audited_chunks", r.audited_chunks},
          {"audit_failures", r.audit_failures},
          {"audit_bytes", r.audit_bytes},
          {"audit_budget_bytes_per_host_hour", r.audit_budget_bytes_per_host_hour},
          {"audit_cycles", r.audit_cycles}};
}

RepairProgress RepairFromJson(const json& in) {
  RepairProgress r;
  if (!in.is_object()) return r;
  r.chunks_left = in.value("chunks_left", uint64_t{0});
  r.bytes_left = in.value("bytes_left", uint64_t{0});
  r.chunks_done = in.value("chunks_done", uint64_t{0});
  r.bytes_done = in.value("bytes_done", uint64_t{0});
  r.chunks_failed = in.value("chunks_failed", uint64_t{0});
  r.shards_unplaced = in.value("shards_unplaced", uint64_t{0});
  r.bad_shards = in.value("bad_shards", uint64_t{0});
  r.eta_s = in.value("eta_s", int64_t{-1});
  r.rate_limit_bytes_per_s = in.value("rate_limit_bytes_per_s", uint64_t{0});
  r.host_grace_s = in.value("host_grace_s", int64_t{0});
  r.audited_chunks = in.value("audited_chunks", uint64_t{0});
  r.audit_failures = in.value("audit_failures", uint64_t{0});
  r.audit_bytes = in.value("audit_bytes", uint64_t{0});
  r.audit_budget_bytes_per_host_hour = in.value("audit_budget_bytes_per_host_hour", uint64_t{0});
  r.audit_cycles = in.value("audit_cycles", uint64_t{0});
  return r;
}

HostState HostStateFromName(const std::string& name) {
  if (name == "away") return HostState::kAway;
  if (name == "lost") return HostState::kLost;
  return HostState::kUp;
}

}  // namespace

std::string StatusToJson(const DaemonStatus& status) {
  const VolumeStatus& v = status.volume;
  json stores = json::array();
  for (const VolumeStatus::Store& s : v.stores) {
    json store = {{"name", s.name},
                  {"reachable", s.reachable},
                  {"used_bytes", s.used_bytes},
                  {"capacity_bytes", s.capacity_bytes},
                  {"shard_count", s.shard_count},
                  {"draining", s.draining},
                  {"state", HostStateName(s.state)},
                  {"distrusted", s.distrusted},
                  {"audits_ok", s.audits_ok},
                  {"audits_failed", s.audits_failed},
                  {"uptime", s.uptime}};
    if (!s.problem.empty()) store["problem"] = s.problem;
    stores.push_back(std::move(store));
  }
  const json out = {{"home", status.home},
                    {"mountpoint", status.mountpoint},
                    {"data_shards", v.data_shards},
                    {"parity_shards", v.parity_shards},
                    {"files", v.files},
                    {"chunks", v.chunks},
                    {"chunks_healthy", v.chunks_healthy},
                    {"chunks_degraded", v.chunks_degraded},
                    {"chunks_lost", v.chunks_lost},
                    {"scheme_availability", v.scheme_availability},
                    {"placement_shortfall", v.placement_shortfall},
                    {"repair", RepairToJson(v.repair)},
                    {"logical_bytes", v.logical_bytes},
                    {"pending_bytes", v.pending_bytes},
                    {"pending_deletes", v.pending_deletes},
                    {"degraded_reads", v.degraded_reads},
                    {"swept_shards", v.swept_shards},
                    {"cleanup_passes", v.cleanup_passes},
                    {"journal_damage", v.journal_damage},
                    {"journal_used_bytes", v.journal_used_bytes},
                    {"journal_capacity_bytes", v.journal_capacity_bytes},
                    {"journal_full", v.journal_full},
                    {"writers_waiting", v.writers_waiting},
                    {"stuck_shards", v.stuck_shards},
                    {"stores", stores}};
  // Invalid UTF-8 in a store name must not turn a status request into an exception.
  return out.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string CheckReportToJson(const CheckReport& r) {
  const json out = {{"chunks", r.chunks},
                    {"shards_checked", r.shards_checked},
                    {"shards_missing", r.shards_missing},
                    {"shards_corrupt", r.shards_corrupt},
                    {"shards_unchecked", r.shards_unchecked},
                    {"orphan_shards", r.orphan_shards},
                    {"orphans_recent", r.orphans_recent},
                    {"chunks_unrecoverable", r.chunks_unrecoverable},
                    {"chunks_repaired", r.chunks_repaired},
                    {"stores_unreachable", r.stores_unreachable},
                    {"problems", r.problems}};
  return out.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<CheckReport> CheckReportFromJson(std::string_view text) {
  const json in = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (in.is_discarded() || !in.is_object()) return Status::Corrupt("the check report is not JSON");
  try {
    CheckReport r;
    r.chunks = in.at("chunks").get<uint64_t>();
    r.shards_checked = in.at("shards_checked").get<uint64_t>();
    r.shards_missing = in.at("shards_missing").get<uint64_t>();
    r.shards_corrupt = in.at("shards_corrupt").get<uint64_t>();
    r.shards_unchecked = in.at("shards_unchecked").get<uint64_t>();
    r.orphan_shards = in.at("orphan_shards").get<uint64_t>();
    r.orphans_recent = in.at("orphans_recent").get<uint64_t>();
    r.chunks_unrecoverable = in.at("chunks_unrecoverable").get<uint64_t>();
    r.chunks_repaired = in.at("chunks_repaired").get<uint64_t>();
    r.stores_unreachable = in.at("stores_unreachable").get<std::vector<std::string>>();
    r.problems = in.at("problems").get<std::vector<std::string>>();
    return r;
  } catch (const json::exception& e) {
    return Status::Corrupt(std::string("the check report is malformed: ") + e.what());
  }
}

Result<DaemonStatus> StatusFromJson(std::string_view text) {
  const json in = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (in.is_discarded() || !in.is_object()) {
    return Status::Corrupt("the mount daemon's status is not JSON");
  }
  // nlohmann reports a field of the wrong type by throwing; keep that inside this function.
  try {
    DaemonStatus status;
    status.home = in.at("home").get<std::string>();
    status.mountpoint = in.at("mountpoint").get<std::string>();
    VolumeStatus& v = status.volume;
    v.data_shards = in.at("data_shards").get<int>();
    v.parity_shards = in.at("parity_shards").get<int>();
    v.files = in.at("files").get<uint64_t>();
    v.chunks = in.at("chunks").get<uint64_t>();
    v.chunks_healthy = in.at("chunks_healthy").get<uint64_t>();
    v.chunks_degraded = in.at("chunks_degraded").get<uint64_t>();
    v.chunks_lost = in.value("chunks_lost", uint64_t{0});
    v.scheme_availability = in.value("scheme_availability", -1.0);
    v.placement_shortfall = in.value("placement_shortfall", 0);
    if (in.contains("repair")) v.repair = RepairFromJson(in.at("repair"));
    v.logical_bytes = in.at("logical_bytes").get<uint64_t>();
    v.pending_bytes = in.at("pending_bytes").get<uint64_t>();
    v.pending_deletes = in.at("pending_deletes").get<uint64_t>();
    v.degraded_reads = in.at("degraded_reads").get<uint64_t>();
    v.swept_shards = in.at("swept_shards").get<uint64_t>();
    v.cleanup_passes = in.value("cleanup_passes", uint64_t{0});
    v.journal_damage = in.value("journal_damage", std::vector<std::string>{});
    v.journal_used_bytes = in.value("journal_used_bytes", uint64_t{0});
    v.journal_capacity_bytes = in.value("journal_capacity_bytes", uint64_t{0});
    v.journal_full = in.value("journal_full", false);
    v.writers_waiting = in.value("writers_waiting", 0);
    v.stuck_shards = in.value("stuck_shards", uint64_t{0});
    for (const json& s : in.at("stores")) {
      VolumeStatus::Store store;
      store.name = s.at("name").get<std::string>();
      store.reachable = s.at("reachable").get<bool>();
      store.used_bytes = s.at("used_bytes").get<uint64_t>();
      store.capacity_bytes = s.at("capacity_bytes").get<uint64_t>();
      store.shard_count = s.at("shard_count").get<uint64_t>();
      store.problem = s.value("problem", std::string());
      store.draining = s.value("draining", false);
      store.state = HostStateFromName(s.value("state", std::string("up")));
      store.distrusted = s.value("distrusted", false);
      store.audits_ok = s.value("audits_ok", uint64_t{0});
      store.audits_failed = s.value("audits_failed", uint64_t{0});
      store.uptime = s.value("uptime", -1.0);
      v.stores.push_back(std::move(store));
    }
    return status;
  } catch (const json::exception& e) {
    return Status::Corrupt(std::string("the mount daemon's status is malformed: ") + e.what());
  }
}

}  // namespace quid
