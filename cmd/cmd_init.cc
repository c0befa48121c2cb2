// quid init: creates a new volume in the home folder.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <CLI/CLI.hpp>

#include <filesystem>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "cmd/commands.h"
#include "cmd/home.h"
#include "cmd/init_checks.h"
#include "cmd/network_stores.h"
#include "cmd/passphrase.h"
#include "cmd/size_parse.h"
#include "net/remote_store.h"
#include "storage/base/env.h"
#include "storage/crypto/keys.h"
#include "storage/volume/volume.h"

namespace quid {
namespace {

constexpr const char* kName = "init";
// DESIGN.md: wide stripes, k+m up to 48.
constexpr int kMaxStripeWidth = 48;
// How long `--peer` waits for a host to answer the handshake.
constexpr int64_t kProbeTimeoutMs = 5000;

struct InitArgs {
  std::string home;
  int data = VolumeInitOptions{}.data_shards;
  int parity = VolumeInitOptions{}.parity_shards;
  std::vector<std::string> stores;
  std::vector<std::string> peers;
  std::string key_file;
  std::string passphrase_file;
  std::string chunk_size;
  bool allow_degraded = false;
};

Result<uint32_t> ChunkSize(const std::string& text) {
  if (text.empty()) return VolumeInitOptions{}.chunk_size;
  Result<uint64_t> size = ParseSize(text);
  if (!size.ok()) return size.status();
  if (*size == 0 || *size > std::numeric_limits<uint32_t>::max()) {
    return Status::Invalid("must be between 1 byte and 4 GiB");
  }
  return static_cast<uint32_t>(*size);
}

void PrintSummary(const VolumeInitOptions& options) {
  fmt::print("created a volume in {}\n", options.home);
  fmt::print("  erasure coding  {}+{} ({} data + {} parity shards per chunk, chunks up to {})\n",
             options.data_shards, options.parity_shards, options.data_shards, options.parity_shards,
             FormatSize(options.chunk_size));
  std::vector<std::string> stores = options.store_folders;
  for (const StoreSpec& host : options.hosts) stores.push_back("host " + host.location);
  fmt::print("  stores          {}\n", fmt::join(stores, "\n                  "));
  fmt::print("  key             {}\n", options.key_file.empty()
                                           ? "wrapped with the passphrase"
                                           : "wrapped with the key file " + options.key_file);
  fmt::print("mount it with: quid mount --home {}{} MOUNTPOINT\n", options.home,
             options.key_file.empty() ? "" : " --key-file " + options.key_file);
}

// Learns each host's key on first contact and pins it (trust on first use), printing the
// fingerprint so it can be compared with what the host shows.
// The node's identity is made here too (hosts admit it by its fingerprint).
Status PinHosts(const std::string& home, const std::vector<std::string>& peers,
                std::vector<StoreSpec>* hosts) {
  QUID_RETURN_IF_ERROR(Env::Default()->CreateDirs(home, 0700));
  QUID_ASSIGN_OR_RETURN(net::NodeIdentity identity, LoadNodeIdentity(home));
  fmt::print("this node is {} (hosts admit it with --tenant {})\n", identity.fingerprint(),
             identity.fingerprint());
  for (const std::string& peer : peers) {
    std::string host;
    uint16_t port = 0;
    QUID_RETURN_IF_ERROR(SplitHostPort(peer, &host, &port));
    Result<net::PublicKey> key = net::ProbeHostKey(host, port, identity, kProbeTimeoutMs);
    if (!key.ok()) return Status(key.status().code(), peer + ": " + key.status().message());
    fmt::print("pinned host {} as {}\n", peer, net::Fingerprint(*key));
    hosts->push_back(StoreSpec{"host", peer, Bytes(key->begin(), key->end())});
  }
  return Status::Ok();
}

int RunInit(const InitArgs& args) {
  // Neither --store nor --peer: the volume lives on the node's leases.
  const bool on_leases = args.stores.empty() && args.peers.empty();
  if (args.data + args.parity > kMaxStripeWidth) {
    return Fail(kName, fmt::format("--data plus --parity must be at most {}", kMaxStripeWidth));
  }
  Result<std::string> home = ResolveHome(args.home);
  if (!home.ok()) return Fail(kName, home.status().message());
  Result<uint32_t> chunk_size = ChunkSize(args.chunk_size);
  if (!chunk_size.ok()) return Fail(kName, "--chunk-size: " + chunk_size.status().message());
  const Status fits = CheckShardsFitFrames(*chunk_size, args.data);
  if (!fits.ok()) return Fail(kName, fits.message());
  std::vector<StoreSpec> lease_hosts;
  if (on_leases) {
    Result<std::vector<StoreSpec>> hosts = LeaseHosts(*home);
    if (!hosts.ok())
      return Fail(kName, "a volume on this node's leases needs its node daemon: " +
                             hosts.status().message());
    lease_hosts = std::move(hosts).value();
    const size_t width = static_cast<size_t>(args.data + args.parity);
    if (lease_hosts.empty() || (lease_hosts.size() < width && !args.allow_degraded))
      return Fail(kName, fmt::format("this node has {} partner(s) with leases in force, and "
                                     "{}+{} coding puts each chunk's {} shards on {} of them: "
                                     "pair with more (quid invite, quid join){}",
                                     lease_hosts.size(), args.data, args.parity, width, width,
                                     lease_hosts.empty() ? "" : ", or --allow-degraded"));
  } else {
    const Status enough = CheckStoreCount(args.stores.size() + args.peers.size(), args.data,
                                          args.parity, args.allow_degraded);
    if (!enough.ok()) return Fail(kName, enough.message());
  }

  VolumeInitOptions options;
  options.home = *home;
  options.data_shards = args.data;
  options.parity_shards = args.parity;
  options.chunk_size = *chunk_size;
  // Absolute, because the mount daemon resolves them later from "/".
  for (const std::string& store : args.stores) options.store_folders.push_back(AbsolutePath(store));
  const Status pinned = PinHosts(options.home, args.peers, &options.hosts);
  if (!pinned.ok()) return Fail(kName, pinned.message());
  if (on_leases) {
    options.on_leases = true;
    options.hosts = lease_hosts;
  }
  // Init stamps the hosts' areas for this node as it stamps folders.
  if (!options.hosts.empty()) options.store_factory = MakeNetworkStoreFactory(options.home);
  if (on_leases)
    fmt::print(
        "the volume lives on this node's leases: {} partner(s) now, more as leases "
        "appear\n",
        lease_hosts.size());

  bool created_key_file = false;
  if (!args.key_file.empty()) {
    options.key_file = AbsolutePath(args.key_file);
    if (!std::filesystem::exists(options.key_file)) {
      const Status created = CreateKeyFile(options.key_file);
      if (!created.ok()) return Fail(kName, created.message());
      created_key_file = true;
    }
  } else {
    Result<std::string> passphrase = GetPassphrase({.file = args.passphrase_file, .confirm = true});
    if (!passphrase.ok()) return Fail(kName, passphrase.status().message());
    options.passphrase = std::move(passphrase).value();
  }

  const Status status = Volume::Init(options);
  if (!status.ok()) {
    // A key file nobody's volume uses would only mislead the next attempt.
    if (created_key_file) std::filesystem::remove(options.key_file);
    if (status.code() == Code::kExists) {
      return Fail(kName, "a volume already exists in " + options.home);
    }
    return Fail(kName, status.message());
  }
  PrintSummary(options);
  if (created_key_file) {
    fmt::print("created the key file {}: keep a copy somewhere safe\n", options.key_file);
  }
  return 0;
}

}  // namespace

Command AddInitCommand(CLI::App& quid) {
  auto args = std::make_shared<InitArgs>();
  CLI::App* app = quid.add_subcommand("init", "Create a new volume in the home folder");
  app->add_option("--home", args->home,
                  "Home folder (default: $QUID_HOME, else ~/.local/share/quid)")
      ->option_text("H");
  app->add_option("--data", args->data, "Data shards per chunk, k (default 4)")
      ->option_text("K")
      ->check(CLI::Range(1, kMaxStripeWidth - 1));
  app->add_option("--parity", args->parity,
                  "Parity shards per chunk, m: any m may be lost (default 2)")
      ->option_text("M")
      ->check(CLI::Range(0, kMaxStripeWidth - 1));
  app->add_option("--store", args->stores, "A local folder used as a shard store (repeatable)")
      ->option_text("DIR")
      ->allow_extra_args(false);
  app->add_option(
         "--peer", args->peers,
         "A host reached over the network; its key is pinned on first contact (repeatable)")
      ->option_text("HOST:PORT")
      ->allow_extra_args(false);
  app->add_option("--key-file", args->key_file,
                  "Wrap the volume key with this key file instead of a passphrase (created if "
                  "missing)")
      ->option_text("F");
  app->add_option("--passphrase-file", args->passphrase_file,
                  "Read the passphrase from the first line of F (else $QUID_PASSPHRASE, else a "
                  "prompt)")
      ->option_text("F");
  app->add_option("--chunk-size", args->chunk_size, "Largest chunk, e.g. 4M (default 4M)")
      ->option_text("SIZE");
  app->add_flag("--allow-degraded", args->allow_degraded,
                "Accept fewer stores than data plus parity shards (some shards of a chunk then "
                "share a store)");
  return {app, [args] { return RunInit(*args); }};
}

}  // namespace quid
