// The client side of one host's connections, behind RemoteStore: a pool of TCP
// connections on an EventLoop, each running the initiator handshake and then multiplexing
// sealed requests by id; callers wait on their own Pending with a deadline; a budget caps
// bytes in flight; a circuit breaker fails fast for a host that keeps failing.
// Internal to net/: remote_store.cc is its only user.
#pragma once

#include "net/remote_store.h"

#include <netdb.h>
#include <spdlog/spdlog.h>
#include <uv.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "net/circuit_breaker.h"
#include "net/secure_channel.h"
#include "net/wire.h"
#include "storage/erasure/checksum.h"

namespace quid::net::host_client {

using SteadyClock = std::chrono::steady_clock;

constexpr size_t kReadBufferBytes = 64 * 1024;
constexpr uint32_t kListPageEntries = 1000;
constexpr unsigned kKeepAliveSeconds = 30;
// Pause before retry n (the last one repeats): long enough for a restarting host.
constexpr std::array<int64_t, 2> kBackoffMs = {50, 200};

inline int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             SteadyClock::now().time_since_epoch())
      .count();
}

// A host's answer: its header and the frame plaintext that holds the payload.
struct Reply {
  wire::Response response;
  Bytes plain;
  size_t payload_offset = 0;
  size_t payload_size = 0;
  PublicKey peer{};                           // a probe only (handshake, no request)
  std::array<uint8_t, 32> channel_binding{};  // a probe only: SessionKeys::binding

  ByteSpan payload() const { return ByteSpan(plain.data() + payload_offset, payload_size); }
};

// One request waiting for its answer. Completed once, by the loop (reply, connection
// error) or by the caller (timeout); whichever comes first wins.
struct Pending {
  uint64_t id = 0;
  int64_t sent_ms = 0;  // loop thread: when its frame was handed to the socket

  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  Status status;  // non-OK: the request did not get an answer (transport)
  Reply reply;
  // For a request no thread waits on (a breaker probe): called once it completes, by
  // whichever thread completed it (for a probe, always the loop's), outside `mu`.
  std::function<void(const Status&)> on_complete;

  // True if this call completed it.
  bool Complete(Status s, Reply r = {}) {
    std::function<void(const Status&)> notify;
    {
      std::lock_guard lock(mu);
      if (done) return false;
      done = true;
      status = std::move(s);
      reply = std::move(r);
      notify = std::move(on_complete);
      cv.notify_all();
    }
    // `status` is never written again once `done` is set.
    if (notify) notify(status);
    return true;
  }
};

struct Core;

// A sealed request on its way out. Its bytes count against the store's in-flight budget
// until this object dies: after the write completed (or was cancelled) and the caller
// let go, so bytes parked in a stuck socket still count.
struct OutFrame {
  std::shared_ptr<Core> core;
  uint64_t reserved = 0;
  Bytes data;  // plaintext + kFrameOverheadBytes of room, sealed in place before the write
  ~OutFrame();
};

struct ClientConn;

struct Queued {
  std::shared_ptr<Pending> pending;
  std::shared_ptr<OutFrame> frame;  // null: a probe that only wants the handshake
};

// One TCP connection to the host. Loop thread only. Kept alive by `self` until both of
// its handles have closed; Core::conns points at it while it is usable.
struct ClientConn {
  enum class State { kConnecting, kHandshaking, kReady, kClosed };

  std::shared_ptr<ClientConn> self;
  std::shared_ptr<Core> core;
  size_t slot = 0;
  State state = State::kConnecting;
  uv_tcp_t tcp{};
  uv_timer_t timer{};  // connect + handshake deadline
  uv_connect_t connect_req{};
  int open_handles = 0;
  std::optional<Handshake> handshake;
  std::optional<FrameCipher> cipher;
  PublicKey peer{};
  std::array<uint8_t, 32> channel_binding{};
  FrameReader reader{kMaxHandshakeBytes};
  std::deque<Queued> queued;  // waiting for the handshake
  std::map<uint64_t, std::shared_ptr<Pending>> pending;
  int64_t last_receive_ms = 0;
  std::array<uint8_t, kReadBufferBytes> read_buffer{};
};

struct WriteReq {
  uv_write_t req{};
  ClientConn* conn = nullptr;
  std::array<uint8_t, kFrameLengthBytes> prefix{};
  Bytes raw;                        // a handshake message
  std::shared_ptr<OutFrame> frame;  // or a sealed request
};

struct Core : std::enable_shared_from_this<Core> {
  RemoteStoreOptions options;
  std::optional<PublicKey> pinned;
  EventLoop* loop = nullptr;
  std::string where;  // "H:P"
  sockaddr_storage addr{};

  std::mutex budget_mu;
  std::condition_variable budget_cv;
  uint64_t in_flight = 0;
  uint64_t peak = 0;

  std::unique_ptr<CircuitBreaker> breaker;
  std::atomic<uint64_t> next_id{1};

  // Loop thread only.
  std::vector<std::shared_ptr<ClientConn>> conns;
  size_t next_conn = 0;
  bool closed = false;

  Status Resolve();
  bool Reserve(uint64_t bytes, SteadyClock::time_point deadline);
  void Release(uint64_t bytes);

  // Caller threads. A call has one deadline (request_timeout_ms from its start) that
  // its retries share. `*timed_out` is set when the wait for the answer hit it.
  Result<Reply> CallOnce(wire::Request* request, ByteSpan payload, SteadyClock::time_point deadline,
                         bool* timed_out);
  Result<Reply> Call(wire::Request request, ByteSpan payload);
  Result<Reply> Wait(const std::shared_ptr<Pending>& pending, SteadyClock::time_point deadline,
                     bool* timed_out = nullptr);
  // Starts the breaker's half-open probe (a ping) on the loop; nobody waits for it.
  void StartProbe();

  // Loop thread.
  void Send(const std::shared_ptr<Pending>& pending, std::shared_ptr<OutFrame> frame);
  std::shared_ptr<ClientConn> Connect(size_t slot);
  void OnConnected(ClientConn* conn, int status);
  void OnRead(ClientConn* conn, ssize_t nread);
  void OnFrame(ClientConn* conn, Bytes frame);
  void Ready(ClientConn* conn);
  void WriteRequest(ClientConn* conn, const std::shared_ptr<Pending>& pending,
                    std::shared_ptr<OutFrame> frame);
  void Write(ClientConn* conn, Bytes raw, std::shared_ptr<OutFrame> frame);
  void Fail(ClientConn* conn, const Status& status);
  void TimedOut(const std::shared_ptr<Pending>& pending);
  void ProbeOnLoop();
  void CloseAll();
};

// A core for `options`, resolving the host once (on the caller's thread). `pinned` empty:
// accept any host key (ProbeHostKey only).
Result<std::shared_ptr<Core>> MakeCore(RemoteStoreOptions options, std::optional<PublicKey> pinned,
                                       EventLoop* loop);
// Closes every connection on the loop thread and waits until that is done.
void CloseOnLoop(const std::shared_ptr<Core>& core);
// The wire form of a shard id.
std::string IdBytes(const ShardId& id);

}  // namespace quid::net::host_client
