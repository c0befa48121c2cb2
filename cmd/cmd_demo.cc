// quid demo: a local exchange on loopback, mounted. Starts N hosts (`quid serve`
// processes, each with its own home under the workdir), creates a volume over them (or
// reuses the one a previous demo left), mounts it in the foreground, and on Ctrl-C or
// SIGTERM unmounts, stores what is pending and stops the hosts.
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

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cmd/commands.h"
#include "cmd/duration_parse.h"
#include "cmd/home.h"
#include "cmd/logging.h"
#include "cmd/mount_daemon.h"
#include "cmd/network_stores.h"
#include "cmd/passphrase.h"
#include "cmd/size_parse.h"
#include "net/remote_store.h"
#include "storage/base/env.h"

namespace quid {
namespace {

constexpr const char* kName = "demo";
constexpr int64_t kHostStartTimeoutMs = 15'000;
constexpr auto kHostStopGrace = std::chrono::seconds(5);

struct DemoArgs {
  int hosts = 6;
  std::string workdir;
  std::string cache_size;
  std::string journal_size;
  std::string journal_wait;
  std::string contribute = "4G";
  std::string mountpoint;
  std::vector<std::string> fuse_options;
};

struct Host {
  std::string home;
  uint16_t port = 0;
  pid_t pid = -1;
  net::PublicKey key{};
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
  uint8_t random[16];
  randombytes_buf(random, sizeof(random));
  std::string made = ToHex({random, sizeof(random)});
  QUID_RETURN_IF_ERROR(Env::Default()->WriteFileAtomic(path, AsBytes(made + "\n"), 0600));
  spdlog::info("no passphrase given: made one, kept in {}", path);
  return made;
}

Status StartHost(Host& host, const std::string& tenant, const std::string& contribute) {
  QUID_RETURN_IF_ERROR(Env::Default()->CreateDirs(host.home, 0700));
  const std::string log = host.home + "/serve.log";
  const std::string listen = "127.0.0.1:" + std::to_string(host.port);
  const pid_t pid = ::fork();
  if (pid < 0) return Status::FromErrno(errno, "fork");
  if (pid == 0) {
    // Its own process group, so a Ctrl-C meant for the demo does not kill the hosts
    // before the volume has stored what is pending; and it dies with the demo.
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd >= 0) {
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
    }
    ::execl("/proc/self/exe", "quid", "serve", "--home", host.home.c_str(), "--listen",
            listen.c_str(), "--contribute", contribute.c_str(), "--tenant", tenant.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  host.pid = pid;
  return Status::Ok();
}

// Waits until the host answers a handshake; learns its key.
Status AwaitHost(Host& host, const net::NodeIdentity& identity) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(kHostStartTimeoutMs);
  for (;;) {
    int status = 0;
    if (::waitpid(host.pid, &status, WNOHANG) == host.pid) {
      host.pid = -1;
      return Status::Unavailable("host " + host.home + " exited; see " + host.home + "/serve.log");
    }
    Result<net::PublicKey> key = net::ProbeHostKey("127.0.0.1", host.port, identity, 1000);
    if (key.ok()) {
      host.key = *key;
      return Status::Ok();
    }
    if (std::chrono::steady_clock::now() > deadline)
      return Status::Unavailable("host on port " + std::to_string(host.port) +
                                 " did not answer: " + key.status().message());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
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
    spdlog::info("mounted a volume over {} loopback hosts at {}; Ctrl-C unmounts and stops them",
                 hosts_, mountpoint_);
  }
  void Failed(const std::string& message) override { failure_ = message; }
  const std::string& failure() const { return failure_; }

 private:
  std::string mountpoint_;
  int hosts_;
  std::string failure_;
};

Status CreateVolumeIfNew(const std::string& home, const std::vector<Host>& hosts,
                         const std::string& passphrase) {
  if (std::filesystem::exists(home + "/meta")) return Status::Ok();  // a previous demo's
  VolumeInitOptions init;
  init.home = home;
  init.passphrase = passphrase;
  const int n = static_cast<int>(hosts.size());
  // 6 hosts: 4+2, the product's default; fewer or more keep about a third as parity.
  init.parity_shards = n == 1 ? 0 : std::max(1, n / 3);
  init.data_shards = n - init.parity_shards;
  for (const Host& host : hosts) {
    init.hosts.push_back(StoreSpec{"host", "127.0.0.1:" + std::to_string(host.port),
                                   Bytes(host.key.begin(), host.key.end())});
  }
  init.store_factory = MakeNetworkStoreFactory(home);
  return Volume::Init(init);
}

int RunDemo(const DemoArgs& args) {
  UseForegroundLogging();
  if (args.hosts < 1 || args.hosts > 48) return Fail(kName, "--hosts must be 1..48");
  const std::string workdir = AbsolutePath(args.workdir.empty() ? DefaultWorkdir() : args.workdir);
  Status made = Env::Default()->CreateDirs(workdir, 0700);
  if (!made.ok()) return Fail(kName, made.message());
  std::error_code ec;
  std::filesystem::create_directories(args.mountpoint, ec);
  const std::string mountpoint = std::filesystem::canonical(args.mountpoint, ec).string();
  if (ec) return Fail(kName, args.mountpoint + ": " + ec.message());

  MountDaemonOptions options;
  options.volume.home = workdir + "/tenant";
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
  Result<uint64_t> contribution = ParseSize(args.contribute);
  if (!contribution.ok()) return Fail(kName, "--contribute: " + contribution.status().message());
  Result<std::string> passphrase = DemoPassphrase(workdir);
  if (!passphrase.ok()) return Fail(kName, passphrase.status().message());
  Result<net::NodeIdentity> tenant = LoadNodeIdentity(options.volume.home);
  if (!tenant.ok()) return Fail(kName, tenant.status().message());
  Result<std::vector<uint16_t>> ports = HostPorts(workdir, args.hosts);
  if (!ports.ok()) return Fail(kName, ports.status().message());

  std::vector<Host> hosts(static_cast<size_t>(args.hosts));
  Status started;
  for (size_t i = 0; i < hosts.size() && started.ok(); ++i) {
    hosts[i].home = workdir + "/host" + std::to_string(i + 1);
    hosts[i].port = (*ports)[i];
    started = StartHost(hosts[i], tenant->fingerprint(), args.contribute);
  }
  for (size_t i = 0; i < hosts.size() && started.ok(); ++i) started = AwaitHost(hosts[i], *tenant);
  if (started.ok()) started = CreateVolumeIfNew(options.volume.home, hosts, *passphrase);
  if (!started.ok()) {
    StopHosts(hosts);
    return Fail(kName, started.message());
  }
  spdlog::info("{} hosts on 127.0.0.1 ports {}..., state in {}", hosts.size(), hosts[0].port,
               workdir);

  options.volume.passphrase = std::move(passphrase).value();
  options.volume.store_factory = MakeNetworkStoreFactory(options.volume.home);
  DemoReport report(mountpoint, args.hosts);
  const int code = RunMountDaemon(std::move(options), report);
  StopHosts(hosts);
  if (!report.failure().empty()) return Fail(kName, report.failure());
  return code;
}

}  // namespace

Command AddDemoCommand(CLI::App& quid) {
  auto args = std::make_shared<DemoArgs>();
  CLI::App* app = quid.add_subcommand(
      "demo", "A local exchange: N hosts on loopback and a volume over them, mounted");
  app->add_option("--hosts", args->hosts, "How many hosts to start (default 6: a 4+2 volume)")
      ->option_text("N");
  app->add_option("--workdir", args->workdir,
                  "Where the hosts and the volume keep their state (default $TMPDIR/quid-demo-UID)")
      ->option_text("DIR");
  app->add_option("--cache-size", args->cache_size,
                  "Read cache; 0 sends every read to the hosts (default 256M)")
      ->option_text("SIZE");
  app->add_option("--journal-size", args->journal_size,
                  "Journal capacity: acknowledged writes not yet on the hosts (default 1G)")
      ->option_text("SIZE");
  app->add_option("--journal-wait", args->journal_wait,
                  "How long a write waits for a full journal before ENOSPC (default 30s)")
      ->option_text("D");
  app->add_option("--contribute", args->contribute, "Space each host gives (default 4G)")
      ->option_text("SIZE");
  app->add_option("-o", args->fuse_options,
                  "FUSE mount options as mount(8) takes them: allow_other, ro, ... (repeatable)")
      ->option_text("OPT[,OPT]...")
      ->allow_extra_args(false);
  app->add_option("MOUNTPOINT", args->mountpoint, "Folder to mount the volume on")->required();
  return {app, [args] { return RunDemo(*args); }};
}

}  // namespace quid
