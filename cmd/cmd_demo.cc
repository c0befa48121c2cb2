// quid demo: a small exchange on loopback, mounted. Starts N nodes (`quid serve`
// processes with homes W/node1..W/nodeN), pairs node 1 with each of the others by a real
// invitation (quid invite on node 1, quid join on the other, through their node.sock),
// creates node 1's volume on its leases (or reuses the one a previous demo left), mounts
// it in the foreground, and on Ctrl-C or SIGTERM unmounts, stores what is pending and
// stops the nodes. Run again on the same workdir, it reopens the same exchange: the same
// ports, the nodes' books, the volume.
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sodium.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cmd/commands.h"
#include "cmd/duration_parse.h"
#include "cmd/home.h"
#include "cmd/logging.h"
#include "cmd/mount_daemon.h"
#include "cmd/network_stores.h"
#include "cmd/node_socket.h"
#include "cmd/passphrase.h"
#include "cmd/repair_flags.h"
#include "cmd/size_parse.h"
#include "storage/base/env.h"

namespace quid {
namespace {

constexpr const char* kName = "demo";
constexpr int64_t kHostStartTimeoutMs = 15'000;
constexpr int kNodeRequestMs = 30'000;
constexpr int64_t kLeasesTimeoutMs = 30'000;
constexpr auto kHostStopGrace = std::chrono::seconds(5);

struct DemoArgs {
  int nodes = 7;
  int hosts = 0;  // --hosts N: N partners, so N + 1 nodes
  std::string workdir;
  std::string cache_size;
  std::string journal_size;
  std::string journal_wait;
  RepairFlags repair;
  std::string contribute = "4G";
  std::vector<std::string> serve_flags;  // --lease-term, --notice, --grace, --heartbeat
  std::string mountpoint;
  std::vector<std::string> fuse_options;
};

struct Host {
  std::string home;
  uint16_t port = 0;
  pid_t pid = -1;
  std::string fingerprint;
};

std::string DefaultWorkdir() {
  const char* tmp = std::getenv("TMPDIR");
  return std::string(tmp && *tmp ? tmp : "/tmp") + "/quid-demo-" + std::to_string(::getuid());
}

// Ports free on 127.0.0.1 now: bound together (so they differ), then released.
Result<std::vector<uint16_t>> PickFreePorts(int count) {
  std::vector<int> fds;
  std::vector<uint16_t> ports;
  Status status;
  for (int i = 0; i < count && status.ok(); ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      status = Status::FromErrno(errno, "pick a free port");
    } else {
      ports.push_back(ntohs(addr.sin_port));
    }
    if (fd >= 0) fds.push_back(fd);
  }
  for (int fd : fds) ::close(fd);
  if (!status.ok()) return status;
  return ports;
}

// The ports of a previous demo in this workdir, so its hosts come back where the volume
// expects them; new ones otherwise.
Result<std::vector<uint16_t>> HostPorts(const std::string& workdir, int count) {
  const std::string path = workdir + "/ports";
  std::vector<uint16_t> ports;
  std::ifstream in(path);
  for (unsigned p; in >> p;) ports.push_back(static_cast<uint16_t>(p));
  if (static_cast<int>(ports.size()) == count) return ports;
  QUID_ASSIGN_OR_RETURN(ports, PickFreePorts(count));
  std::string text;
  for (uint16_t p : ports) text += std::to_string(p) + "\n";
  QUID_RETURN_IF_ERROR(Env::Default()->WriteFileAtomic(path, AsBytes(text), 0600));
  return ports;
}

// The demo's passphrase: QUID_PASSPHRASE or a prompt when there is one, else a random one
// kept (0600) in the workdir.
Result<std::string> DemoPassphrase(const std::string& workdir) {
  const std::string path = workdir + "/passphrase";
  if (std::filesystem::exists(path)) {
    QUID_ASSIGN_OR_RETURN(std::string kept, Env::Default()->ReadWholeFile(path));
    while (!kept.empty() && kept.back() == '\n') kept.pop_back();
    return kept;
  }
  if (std::getenv("QUID_PASSPHRASE") || ::isatty(STDIN_FILENO)) {
    return GetPassphrase({.confirm = true});
  }
  // A volume a previous demo made with a passphrase it was given (not one it kept here):
  // a new random one could only fail to open it, so say which one it needs.
  if (std::filesystem::exists(workdir + "/node1/meta")) {
    return Status::Invalid("the volume in " + workdir +
                           "/node1 was made with a passphrase this demo was not given: set "
                           "QUID_PASSPHRASE to it (or run the demo on a terminal to type it)");
  }
  uint8_t random[16];
  randombytes_buf(random, sizeof(random));
  std::string made = ToHex({random, sizeof(random)});
  QUID_RETURN_IF_ERROR(Env::Default()->WriteFileAtomic(path, AsBytes(made + "\n"), 0600));
  spdlog::info("no passphrase given: made one, kept in {}", path);
  return made;
}

Status StartHost(Host& host, const std::string& contribute,
                 const std::vector<std::string>& serve_flags) {
  QUID_RETURN_IF_ERROR(Env::Default()->CreateDirs(host.home, 0700));
  const std::string log = host.home + "/serve.log";
  const std::string listen = "127.0.0.1:" + std::to_string(host.port);
  std::vector<std::string> argv = {"quid",     "serve", "--home",       host.home,
                                   "--listen", listen,  "--contribute", contribute};
  argv.insert(argv.end(), serve_flags.begin(), serve_flags.end());
  std::vector<char*> c_argv;
  for (std::string& a : argv) c_argv.push_back(a.data());
  c_argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) return Status::FromErrno(errno, "fork");
  if (pid == 0) {
    // Its own process group, so a Ctrl-C meant for the demo does not kill the nodes
    // before the volume has stored what is pending; and it dies with the demo.
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd >= 0) {
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
    }
    ::execv("/proc/self/exe", c_argv.data());
    ::_exit(127);
  }
  host.pid = pid;
  return Status::Ok();
}

// Waits until the node daemon answers on its node.sock; learns its fingerprint.
Status AwaitHost(Host& host) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(kHostStartTimeoutMs);
  for (;;) {
    int status = 0;
    if (::waitpid(host.pid, &status, WNOHANG) == host.pid) {
      host.pid = -1;
      return Status::Unavailable("node " + host.home + " exited; see " + host.home + "/serve.log");
    }
    Result<nlohmann::json> id = NodeRequest(host.home, {{"op", "id"}}, 1000);
    if (id.ok()) {
      host.fingerprint = (*id)["fingerprint"].get<std::string>();
      return Status::Ok();
    }
    if (std::chrono::steady_clock::now() > deadline)
      return Status::Unavailable("node " + host.home + " did not answer: " + id.status().message());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

// The fingerprints of the nodes `home`'s node holds a lease from (received, in force).
Result<std::set<std::string>> LeasesFrom(const std::string& home) {
  QUID_ASSIGN_OR_RETURN(nlohmann::json reply,
                        NodeRequest(home, {{"op", "stores"}}, kNodeRequestMs));
  std::set<std::string> out;
  for (const nlohmann::json& store : reply.at("stores"))
    out.insert(store.at("peer").get<std::string>());
  return out;
}

// Node 1 invites every other node that is not its partner yet, and that node joins: real
// invitations, through the node daemons, as people would run quid invite and quid join.
Status PairByInvitation(const std::vector<Host>& nodes, uint64_t capacity) {
  const Host& first = nodes[0];
  QUID_ASSIGN_OR_RETURN(std::set<std::string> partners, LeasesFrom(first.home));
  for (size_t i = 1; i < nodes.size(); ++i) {
    if (partners.count(nodes[i].fingerprint)) continue;  // a previous demo paired them
    QUID_ASSIGN_OR_RETURN(
        nlohmann::json invited,
        NodeRequest(first.home, {{"op", "invite"}, {"capacity", capacity}, {"valid_s", 600}},
                    kNodeRequestMs));
    Result<nlohmann::json> joined =
        NodeRequest(nodes[i].home, {{"op", "join"}, {"code", invited.at("code")}}, kNodeRequestMs);
    if (!joined.ok())
      return Status(joined.status().code(), "node " + std::to_string(i + 1) +
                                                " could not join: " + joined.status().message());
    spdlog::info("node {} joined node 1 by invitation: {} each way", i + 1, FormatSize(capacity));
  }
  // The leases are active on both sides once the joins returned; wait for node 1 to hold
  // one from each partner (a countersignature that was lost comes with a heartbeat).
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(kLeasesTimeoutMs);
  for (;;) {
    QUID_ASSIGN_OR_RETURN(partners, LeasesFrom(first.home));
    if (partners.size() >= nodes.size() - 1) return Status::Ok();
    if (std::chrono::steady_clock::now() > deadline)
      return Status::Unavailable("node 1 holds leases from " + std::to_string(partners.size()) +
                                 " of its " + std::to_string(nodes.size() - 1) + " partners");
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

void StopHosts(std::vector<Host>& hosts) {
  for (Host& host : hosts)
    if (host.pid > 0) ::kill(host.pid, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + kHostStopGrace;
  for (Host& host : hosts) {
    while (host.pid > 0) {
      if (::waitpid(host.pid, nullptr, WNOHANG) != 0) {
        host.pid = -1;
      } else if (std::chrono::steady_clock::now() > deadline) {
        ::kill(host.pid, SIGKILL);
        ::waitpid(host.pid, nullptr, 0);
        host.pid = -1;
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
  }
}

class DemoReport : public StartupReport {
 public:
  DemoReport(std::string mountpoint, int hosts)
      : mountpoint_(std::move(mountpoint)), hosts_(hosts) {}
  void Warn(const std::string& message) override { spdlog::warn("{}", message); }
  void Mounted() override {
    spdlog::info(
        "mounted node 1's volume on its leases with {} partners at {}; Ctrl-C unmounts and "
        "stops the nodes",
        hosts_, mountpoint_);
  }
  void Failed(const std::string& message) override { failure_ = message; }
  const std::string& failure() const { return failure_; }

 private:
  std::string mountpoint_;
  int hosts_;
  std::string failure_;
};

// Node 1's volume on its leases, unless a previous demo made it.
Status CreateVolumeIfNew(const std::string& home, const std::string& passphrase) {
  if (std::filesystem::exists(home + "/meta")) return Status::Ok();  // a previous demo's
  VolumeInitOptions init;
  init.home = home;
  init.passphrase = passphrase;
  init.on_leases = true;
  QUID_ASSIGN_OR_RETURN(init.hosts, LeaseHosts(home));
  const int n = static_cast<int>(init.hosts.size());
  // 6 partners: 4+2, the product's default; fewer or more keep about a third as parity.
  init.parity_shards = n == 1 ? 0 : std::max(1, n / 3);
  init.data_shards = n - init.parity_shards;
  init.store_factory = MakeNetworkStoreFactory(home);
  return Volume::Init(init);
}

int RunDemo(const DemoArgs& args) {
  UseForegroundLogging();
  const int nodes = args.hosts > 0 ? args.hosts + 1 : args.nodes;
  if (nodes < 2 || nodes > 49)
    return Fail(kName, "--nodes must be 2..49 (node 1 and up to 48 partners)");
  const std::string workdir = AbsolutePath(args.workdir.empty() ? DefaultWorkdir() : args.workdir);
  Status made = Env::Default()->CreateDirs(workdir, 0700);
  if (!made.ok()) return Fail(kName, made.message());
  std::error_code ec;
  std::filesystem::create_directories(args.mountpoint, ec);
  const std::string mountpoint = std::filesystem::canonical(args.mountpoint, ec).string();
  if (ec) return Fail(kName, args.mountpoint + ": " + ec.message());

  MountDaemonOptions options;
  options.volume.home = workdir + "/node1";
  options.mount.mountpoint = mountpoint;
  for (const std::string& group : args.fuse_options) {
    for (size_t start = 0; start <= group.size();) {
      size_t comma = group.find(',', start);
      if (comma == std::string::npos) comma = group.size();
      if (comma > start) options.mount.fuse_options.push_back(group.substr(start, comma - start));
      start = comma + 1;
    }
  }
  if (!args.cache_size.empty()) {
    Result<uint64_t> cache = ParseSize(args.cache_size);
    if (!cache.ok()) return Fail(kName, "--cache-size: " + cache.status().message());
    options.volume.cache_bytes = *cache;
  }
  if (!args.journal_size.empty()) {
    Result<uint64_t> journal = ParseSize(args.journal_size);
    if (!journal.ok()) return Fail(kName, "--journal-size: " + journal.status().message());
    options.volume.journal_bytes = *journal;
  }
  if (!args.journal_wait.empty()) {
    Result<int64_t> wait = ParseDuration(args.journal_wait);
    if (!wait.ok()) return Fail(kName, "--journal-wait: " + wait.status().message());
    options.volume.journal_wait_ns = *wait;
  }
  if (Status s = ApplyRepairFlags(args.repair, &options.volume.repair); !s.ok())
    return Fail(kName, s.message());
  Result<uint64_t> contribution = ParseSize(args.contribute);
  if (!contribution.ok()) return Fail(kName, "--contribute: " + contribution.status().message());
  Result<std::string> passphrase = DemoPassphrase(workdir);
  if (!passphrase.ok()) return Fail(kName, passphrase.status().message());
  Result<std::vector<uint16_t>> ports = HostPorts(workdir, nodes);
  if (!ports.ok()) return Fail(kName, ports.status().message());

  std::vector<Host> hosts(static_cast<size_t>(nodes));
  Status started;
  for (size_t i = 0; i < hosts.size() && started.ok(); ++i) {
    hosts[i].home = workdir + "/node" + std::to_string(i + 1);
    hosts[i].port = (*ports)[i];
    started = StartHost(hosts[i], args.contribute, args.serve_flags);
  }
  for (size_t i = 0; i < hosts.size() && started.ok(); ++i) started = AwaitHost(hosts[i]);
  // Node 1 gives its contribution to its partners in equal leases, and gets as much back.
  if (started.ok()) started = PairByInvitation(hosts, *contribution / (hosts.size() - 1));
  if (started.ok()) started = CreateVolumeIfNew(options.volume.home, *passphrase);
  if (!started.ok()) {
    StopHosts(hosts);
    return Fail(kName, started.message());
  }
  spdlog::info("{} nodes on 127.0.0.1 ports {}..., state in {}", hosts.size(), hosts[0].port,
               workdir);

  options.volume.passphrase = std::move(passphrase).value();
  options.volume.store_factory = MakeNetworkStoreFactory(options.volume.home);
  options.volume.lease_hosts = FollowLeaseHosts(options.volume.home);
  DemoReport report(mountpoint, nodes - 1);
  const int code = RunMountDaemon(std::move(options), report);
  StopHosts(hosts);
  if (!report.failure().empty()) return Fail(kName, report.failure());
  return code;
}

}  // namespace

Command AddDemoCommand(CLI::App& quid) {
  auto args = std::make_shared<DemoArgs>();
  CLI::App* app = quid.add_subcommand(
      "demo",
      "A local exchange: N nodes on loopback paired by invitations, node 1's volume mounted");
  app->add_option("--nodes", args->nodes,
                  "How many nodes: node 1, whose volume is mounted, and its partners (default 7)")
      ->option_text("N");
  app->add_option("--hosts", args->hosts, "N partners: the same as --nodes N+1")->option_text("N");
  app->add_option("--workdir", args->workdir,
                  "Where the hosts and the volume keep their state (default $TMPDIR/quid-demo-UID)")
      ->option_text("DIR");
  app->add_option("--cache-size", args->cache_size,
                  "Read cache; 0 sends every read to the hosts (default 96M)")
      ->option_text("SIZE");
  app->add_option("--journal-size", args->journal_size,
                  "Journal capacity: acknowledged writes not yet on the hosts (default 1G)")
      ->option_text("SIZE");
  app->add_option("--journal-wait", args->journal_wait,
                  "How long a write waits for a full journal before ENOSPC (default 30s)")
      ->option_text("D");
  AddRepairFlags(app, &args->repair);
  app->add_option("--contribute", args->contribute,
                  "Space each node gives; node 1 splits it among its partners (default 4G)")
      ->option_text("SIZE");
  for (const char* flag : {"--lease-term", "--notice", "--grace", "--heartbeat"}) {
    app->add_option_function<std::string>(
           flag,
           [args, flag](const std::string& v) {
             args->serve_flags.push_back(flag);
             args->serve_flags.push_back(v);
           },
           std::string("quid serve's ") + flag + " for every node")
        ->option_text("D");
  }
  app->add_option("-o", args->fuse_options,
                  "FUSE mount options as mount(8) takes them: allow_other, ro, ... (repeatable)")
      ->option_text("OPT[,OPT]...")
      ->allow_extra_args(false);
  app->add_option("MOUNTPOINT", args->mountpoint, "Folder to mount the volume on")->required();
  return {app, [args] { return RunDemo(*args); }};
}

}  // namespace quid
