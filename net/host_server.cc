#include "net/host_server.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <uv.h>

#include <csignal>

#include <atomic>
#include <condition_variable>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <set>

#include "net/event_loop.h"
#include "net/secure_channel.h"
#include "net/wire.h"
#include "storage/base/thread_pool.h"

namespace quid::net {
namespace {

constexpr size_t kReadBufferBytes = 64 * 1024;
constexpr int kListenBacklog = 128;

std::string PeerName(const uv_tcp_t* tcp) {
  sockaddr_storage addr{};
  int len = sizeof(addr);
  if (uv_tcp_getpeername(tcp, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return "?";
  char ip[64] = {};
  // fmt rather than "[" + std::string(...): GCC 12 at -O2 raises a false -Wrestrict on
  // inserting a literal in front of a temporary string.
  if (addr.ss_family == AF_INET6) {
    auto* a6 = reinterpret_cast<const sockaddr_in6*>(&addr);
    uv_ip6_name(a6, ip, sizeof(ip));
    return fmt::format("[{}]:{}", ip, ntohs(a6->sin6_port));
  }
  auto* a4 = reinterpret_cast<const sockaddr_in*>(&addr);
  uv_ip4_name(a4, ip, sizeof(ip));
  return fmt::format("{}:{}", ip, ntohs(a4->sin_port));
}

// Runs `fn` on the loop thread and waits for its status. REQUIRES: the loop is running
// and not shutting down (the caller owns it), and the caller is not the loop thread.
template <typename F>
Status RunOnLoop(EventLoop& loop, F fn) {
  struct Sync {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    Status status;
  };
  auto sync = std::make_shared<Sync>();
  loop.Post([sync, &fn] {
    Status s = fn();
    std::lock_guard lock(sync->mu);
    sync->status = std::move(s);
    sync->done = true;
    sync->cv.notify_all();
  });
  std::unique_lock lock(sync->mu);
  sync->cv.wait(lock, [&] { return sync->done; });
  return sync->status;
}

struct Server;
struct Conn;

// What one authenticated tenant holds on this host, over all its connections. Loop
// thread only. Kept while it has connections or bytes in flight (a job finishing after
// its connection closed still gives its bytes back here).
struct TenantLoad {
  PublicKey tenant{};
  std::set<Conn*> conns;
  uint64_t bytes_in_flight = 0;
};

// One accepted connection. Owned by Server::conns (loop thread) and by the worker jobs of
// its requests (shared_ptr), so a job that finishes after the socket closed finds a
// live object and drops its answer. All fields but `closing` are loop-thread only.
struct Conn {
  Server* server = nullptr;
  uv_tcp_t tcp{};
  uv_timer_t handshake_timer{};
  int open_handles = 0;
  std::string peer;
  FrameReader reader{kMaxHandshakeBytes};
  std::optional<Handshake> handshake;
  std::optional<FrameCipher> cipher;
  PublicKey tenant{};
  std::array<uint8_t, 32> channel_binding{};
  bool guest = false;                // counted in Server::guests
  std::shared_ptr<TenantLoad> load;  // set once established and admitted under the limit
  bool established = false;
  bool handshaking_listed = false;
  std::list<Conn*>::iterator handshaking_pos;  // in Server::handshaking, when listed
  bool reading = false;
  // Requests taken off the socket whose response is not yet fully written: bounds the
  // memory a connection holds (requests in progress plus responses waiting to go out).
  size_t in_flight = 0;
  std::atomic<bool> closing{false};
  std::array<uint8_t, kReadBufferBytes> read_buffer{};
};

// A write in progress: the buffers stay alive until libuv's callback.
struct WriteReq {
  uv_write_t req{};
  Conn* conn = nullptr;
  std::array<uint8_t, kFrameLengthBytes> prefix{};
  Bytes body;
  bool is_response = false;
  uint64_t tenant_bytes = 0;  // charged to the connection's tenant until written
};

// Everything the server does; HostServer::Impl is one.
struct Server {
  HostServerOptions options;
  std::unique_ptr<EventLoop> loop;
  std::unique_ptr<ThreadPool> pool;
  uint16_t port = 0;

  // Loop thread only.
  uv_tcp_t* listener = nullptr;
  std::map<Conn*, std::shared_ptr<Conn>> conns;
  std::list<Conn*> handshaking;  // oldest first
  std::map<PublicKey, std::shared_ptr<TenantLoad>> tenants;
  size_t queued = 0;  // requests handed to the pool and not yet answered
  size_t guests = 0;  // established connections of guests
  bool stopping = false;

  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> refused{0};
  std::atomic<uint64_t> dropped{0};
  std::atomic<uint64_t> shed{0};
  std::atomic<uint64_t> handshaking_now{0};
  std::atomic<uint64_t> served{0};
  std::atomic<uint64_t> busy{0};
  std::atomic<uint64_t> peak_queued{0};
  std::atomic<uint64_t> peak_tenant_bytes{0};

  std::mutex stop_mu;
  bool stopped = false;

  Status Listen();
  void OnConnection(int status);
  void OnRead(Conn* conn, ssize_t nread);
  void OnFrame(Conn* conn, Bytes frame);
  void HandshakeFrame(Conn* conn, const Bytes& frame);
  void RequestFrame(Conn* conn, Bytes frame);
  // Answers at once, from the loop: the queue is full.
  void AnswerBusy(Conn* conn, uint64_t request_id, uint64_t request_bytes);
  // `request_bytes` were charged to the tenant when the request was taken off the socket.
  void Respond(const std::shared_ptr<Conn>& conn, Result<Bytes> plain, uint64_t request_bytes);
  void Write(Conn* conn, Bytes body, bool is_response, uint64_t tenant_bytes = 0);
  void OnWritten(WriteReq* write, int status);
  // Takes buffered frames while the connection is under its cap, then reads or not.
  void Pump(Conn* conn);
  void UpdateReading(Conn* conn);
  // True while the connection may take another request off its socket.
  bool HasRoom(const Conn* conn) const;
  void Charge(TenantLoad* load, uint64_t bytes);
  // Gives bytes back and lets the tenant's connections read again if they now may.
  void Release(const std::shared_ptr<TenantLoad>& load, uint64_t bytes);
  void ForgetIfIdle(const std::shared_ptr<TenantLoad>& load);
  void Unlist(Conn* conn);
  // Closes the connection once; a non-empty reason is logged and `counter` bumped.
  void Close(Conn* conn, const std::string& reason, std::atomic<uint64_t>* counter);
};

Status Server::Listen() {
  uv_loop_t* uv = loop->loop();
  sockaddr_storage addr{};
  const std::string& host = options.listen_host;
  int rc = host.find(':') != std::string::npos
               ? uv_ip6_addr(host.c_str(), options.port, reinterpret_cast<sockaddr_in6*>(&addr))
               : uv_ip4_addr(host.c_str(), options.port, reinterpret_cast<sockaddr_in*>(&addr));
  if (rc != 0) return Status::Invalid("cannot listen on '" + host + "': not an IP address");
  listener = new uv_tcp_t;
  uv_tcp_init(uv, listener);
  listener->data = this;
  std::string where = host + ":" + std::to_string(options.port);
  rc = uv_tcp_bind(listener, reinterpret_cast<const sockaddr*>(&addr), 0);
  // libuv may defer a bind error (EADDRINUSE) to listen: check both.
  if (rc == 0) {
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(listener), kListenBacklog,
                   [](uv_stream_t* server, int status) {
                     static_cast<Server*>(server->data)->OnConnection(status);
                   });
  }
  if (rc != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(listener),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
    listener = nullptr;
    return Status::Unavailable("cannot listen on " + where + ": " + uv_strerror(rc));
  }
  sockaddr_storage bound{};
  int len = sizeof(bound);
  uv_tcp_getsockname(listener, reinterpret_cast<sockaddr*>(&bound), &len);
  port = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                           : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  spdlog::info("host {} listening on {}:{}", options.identity.fingerprint(), host, port);
  return Status::Ok();
}

void Server::OnConnection(int status) {
  if (status < 0) {
    spdlog::warn("host: accept failed: {}", uv_strerror(status));
    return;
  }
  auto conn = std::make_shared<Conn>();
  conn->server = this;
  uv_tcp_init(loop->loop(), &conn->tcp);
  conn->tcp.data = conn.get();
  conn->open_handles = 1;
  conns[conn.get()] = conn;
  if (stopping || uv_accept(reinterpret_cast<uv_stream_t*>(listener),
                            reinterpret_cast<uv_stream_t*>(&conn->tcp)) != 0) {
    Close(conn.get(), "", nullptr);
    return;
  }
  ++accepted;
  // At the cap the oldest handshake makes room: a client that opens connections and
  // stays silent cannot keep everyone else out for the handshake timeout, only delay
  // them by opening connections faster than a real handshake completes.
  while (handshaking.size() >= options.max_handshaking_connections) {
    Close(handshaking.front(),
          "displaced while in the handshake (" + std::to_string(handshaking.size()) +
              " connections were, the most this host keeps)",
          &shed);
  }
  conn->handshaking_pos = handshaking.insert(handshaking.end(), conn.get());
  conn->handshaking_listed = true;
  handshaking_now = handshaking.size();
  conn->peer = PeerName(&conn->tcp);
  uv_tcp_nodelay(&conn->tcp, 1);
  uv_timer_init(loop->loop(), &conn->handshake_timer);
  conn->handshake_timer.data = conn.get();
  conn->open_handles = 2;
  RequestHandler* service = options.service;
  conn->handshake.emplace(Handshake::Responder(
      options.identity, [service](const PublicKey& tenant) { return service->Admit(tenant); }));
  uint64_t timeout_ms = options.handshake_timeout_ms > 0 ? options.handshake_timeout_ms : 1;
  uv_timer_start(
      &conn->handshake_timer,
      [](uv_timer_t* timer) {
        auto* c = static_cast<Conn*>(timer->data);
        if (!c->established) c->server->Close(c, "no handshake in time", &c->server->refused);
      },
      timeout_ms, 0);
  UpdateReading(conn.get());
}

void Server::UpdateReading(Conn* conn) {
  if (conn->closing) return;
  bool want = !stopping && HasRoom(conn);
  if (want == conn->reading) return;
  conn->reading = want;
  auto* stream = reinterpret_cast<uv_stream_t*>(&conn->tcp);
  if (!want) {
    uv_read_stop(stream);
    return;
  }
  int rc = uv_read_start(
      stream,
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        auto* c = static_cast<Conn*>(h->data);
        *buf = uv_buf_init(reinterpret_cast<char*>(c->read_buffer.data()),
                           static_cast<unsigned>(c->read_buffer.size()));
      },
      [](uv_stream_t* s, ssize_t nread, const uv_buf_t*) {
        auto* c = static_cast<Conn*>(s->data);
        c->server->OnRead(c, nread);
      });
  if (rc != 0) Close(conn, std::string("read failed: ") + uv_strerror(rc), &dropped);
}

void Server::OnRead(Conn* conn, ssize_t nread) {
  if (conn->closing || nread == 0) return;
  if (nread < 0) {
    // A peer hanging up is normal; a reset is worth a line in the log.
    if (nread == UV_EOF) {
      Close(conn, "", nullptr);
    } else {
      Close(conn, std::string("read failed: ") + uv_err_name(static_cast<int>(nread)), &dropped);
    }
    return;
  }
  Status s = conn->reader.Append(ByteSpan(conn->read_buffer.data(), static_cast<size_t>(nread)));
  if (!s.ok()) {
    Close(conn, "bad frame: " + s.message(), conn->established ? &dropped : &refused);
    return;
  }
  Pump(conn);
}

void Server::Pump(Conn* conn) {
  // Frames are taken one at a time: a handshake frame changes the reader's limit for the
  // frames behind it, a closed connection stops here, and frames already buffered wait
  // too while the connection is at its cap, however the peer's bytes were split up.
  while (!conn->closing && HasRoom(conn)) {
    std::optional<Bytes> frame = conn->reader.Next();
    if (!frame) break;
    OnFrame(conn, std::move(*frame));
  }
  if (conn->closing) return;
  if (conn->reader.failed()) {
    Close(conn, "bad frame: length prefix over the limit", conn->established ? &dropped : &refused);
    return;
  }
  UpdateReading(conn);
}

void Server::OnFrame(Conn* conn, Bytes frame) {
  if (conn->established) {
    RequestFrame(conn, std::move(frame));
  } else {
    HandshakeFrame(conn, frame);
  }
}

void Server::HandshakeFrame(Conn* conn, const Bytes& frame) {
  Result<Bytes> reply = conn->handshake->Receive(frame);
  if (!reply.ok()) {
    Close(conn, "handshake failed: " + reply.status().ToString(), &refused);
    return;
  }
  if (!reply->empty()) Write(conn, std::move(reply.value()), false);
  if (!conn->handshake->done()) return;
  conn->established = true;
  Unlist(conn);
  conn->tenant = conn->handshake->peer();
  conn->channel_binding = conn->handshake->keys().binding;
  if (options.service->IsGuest(conn->tenant)) {
    if (guests >= options.max_guest_connections) {
      Close(conn,
            "guest " + Fingerprint(conn->tenant) + ": " + std::to_string(guests) +
                " guests are connected, the most this host serves",
            &refused);
      return;
    }
    conn->guest = true;
    ++guests;
  }
  std::shared_ptr<TenantLoad>& load = tenants[conn->tenant];
  if (!load) {
    load = std::make_shared<TenantLoad>();
    load->tenant = conn->tenant;
  }
  if (load->conns.size() >= options.max_connections_per_tenant) {
    std::shared_ptr<TenantLoad> held = load;
    Close(conn,
          "tenant " + Fingerprint(conn->tenant) + " already has " +
              std::to_string(held->conns.size()) + " connections, the most this host serves",
          &refused);
    ForgetIfIdle(held);
    return;
  }
  load->conns.insert(conn);
  conn->load = load;
  conn->cipher.emplace(conn->handshake->keys());
  conn->handshake.reset();  // wipes the handshake's secrets now
  conn->reader.set_max_frame_bytes(kMaxFrameBytes);
  uv_timer_stop(&conn->handshake_timer);
  spdlog::debug("host: tenant {} connected from {}", Fingerprint(conn->tenant), conn->peer);
}

void Server::RequestFrame(Conn* conn, Bytes frame) {
  if (frame.size() < kFrameOverheadBytes) {
    Close(conn, "frame shorter than its length and tag", &dropped);
    return;
  }
  size_t plain_size = frame.size() - kFrameOverheadBytes;
  Status opened = conn->cipher->Open(frame, MutableByteSpan(frame.data(), plain_size));
  if (!opened.ok()) {
    Close(conn, "frame failed to open (forged, altered or replayed): " + opened.message(),
          &dropped);
    return;
  }
  frame.resize(plain_size);
  auto request = std::make_shared<wire::Request>();
  ByteSpan payload;
  Status decoded = DecodeMessage(frame, request.get(), &payload);
  if (!decoded.ok()) {
    Close(conn, "undecodable request: " + decoded.message(), &dropped);
    return;
  }
  if (request->op_case() == wire::Request::OP_NOT_SET) {
    Close(conn, "request of unknown type", &dropped);
    return;
  }
  size_t payload_offset = static_cast<size_t>(payload.data() - frame.data());
  size_t payload_size = payload.size();
  // A read's answer is reserved with its request, so answers the tenant does not read
  // cannot pile up past its cap: a range by its length, a whole shard by the most it
  // may be (the size is known only on the disk). Respond trades this for the real size.
  uint64_t request_bytes = frame.size();
  if (request->op_case() == wire::Request::kGet) {
    request_bytes += request->get().whole()
                         ? kMaxPayloadBytes
                         : std::min<uint64_t>(request->get().length(), kMaxPayloadBytes);
  }
  ++conn->in_flight;
  Charge(conn->load.get(), request_bytes);
  if (queued >= options.max_queued_requests) {
    AnswerBusy(conn, request->id(), request_bytes);
    return;
  }
  ++queued;
  if (queued > peak_queued) peak_queued = queued;

  std::shared_ptr<Conn> owner = conns[conn];
  auto body = std::make_shared<Bytes>(std::move(frame));
  // Disk work never runs on the loop thread.
  pool->Submit([this, owner, request, body, payload_offset, payload_size, request_bytes]() mutable {
    if (owner->closing) {
      // Still reported back, so the queue and the tenant's bytes are given back.
      body.reset();
      loop->Post([this, owner, request_bytes] {
        Respond(owner, Status::Unavailable("connection closed"), request_bytes);
      });
      return;
    }
    wire::Response response;
    Bytes reply_payload;
    RequestContext context;
    context.peer = owner->tenant;
    context.channel_binding = owner->channel_binding;
    options.service->Serve(context, *request, ByteSpan(body->data() + payload_offset, payload_size),
                           &response, &reply_payload);
    response.set_id(request->id());
    body.reset();  // the request's bytes are not needed while the response waits
    auto plain = std::make_shared<Result<Bytes>>(
        EncodeMessage(response, reply_payload, kFrameOverheadBytes));
    loop->Post(
        [this, owner, plain, request_bytes] { Respond(owner, std::move(*plain), request_bytes); });
  });
}

void Server::AnswerBusy(Conn* conn, uint64_t request_id, uint64_t request_bytes) {
  ++busy;
  wire::Response response;
  response.set_id(request_id);
  SetStatus(&response, Status(Code::kBusy, "host busy: " + std::to_string(queued) +
                                               " requests queued, the most it takes; try again"));
  // Counted as queued only for Respond's bookkeeping.
  ++queued;
  Respond(conns[conn], EncodeMessage(response, {}, kFrameOverheadBytes), request_bytes);
}

void Server::Respond(const std::shared_ptr<Conn>& conn, Result<Bytes> plain,
                     uint64_t request_bytes) {
  --queued;
  // The request's bytes are gone (the worker dropped them); the response's, if any, are
  // charged below until written.
  std::shared_ptr<TenantLoad> load = conn->load;
  if (conn->closing) {
    --conn->in_flight;
    Release(load, request_bytes);
    return;
  }
  if (!plain.ok()) {
    --conn->in_flight;
    Release(load, request_bytes);
    Close(conn.get(), "cannot encode a response: " + plain.status().message(), &dropped);
    return;
  }
  ++served;
  Bytes body = std::move(plain.value());
  const ByteSpan message(body.data(), body.size() - kFrameOverheadBytes);
  // Sealed here, on the loop thread, so frame counters follow the order of writes.
  conn->cipher->Seal(message, MutableByteSpan(body), MessageHeadBytes(message));
  const uint64_t response_bytes = body.size();
  Release(load, request_bytes);
  Charge(load.get(), response_bytes);
  Write(conn.get(), std::move(body), true, response_bytes);
}

void Server::Write(Conn* conn, Bytes body, bool is_response, uint64_t tenant_bytes) {
  auto* write = new WriteReq;
  write->conn = conn;
  write->is_response = is_response;
  write->tenant_bytes = tenant_bytes;
  uint32_t n = static_cast<uint32_t>(body.size());
  write->prefix = {static_cast<uint8_t>(n >> 24), static_cast<uint8_t>(n >> 16),
                   static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)};
  write->body = std::move(body);
  write->req.data = write;
  uv_buf_t bufs[2] = {uv_buf_init(reinterpret_cast<char*>(write->prefix.data()), kFrameLengthBytes),
                      uv_buf_init(reinterpret_cast<char*>(write->body.data()),
                                  static_cast<unsigned>(write->body.size()))};
  int rc = uv_write(&write->req, reinterpret_cast<uv_stream_t*>(&conn->tcp), bufs, 2,
                    [](uv_write_t* req, int status) {
                      auto* w = static_cast<WriteReq*>(req->data);
                      w->conn->server->OnWritten(w, status);
                    });
  if (rc != 0) {
    delete write;
    if (is_response) --conn->in_flight;
    Close(conn, std::string("write failed: ") + uv_strerror(rc), &dropped);
    Release(conn->load, tenant_bytes);
  }
}

void Server::OnWritten(WriteReq* write, int status) {
  Conn* conn = write->conn;
  bool is_response = write->is_response;
  uint64_t tenant_bytes = write->tenant_bytes;
  delete write;
  if (is_response) --conn->in_flight;
  Release(conn->load, tenant_bytes);
  if (status < 0) {
    if (status != UV_ECANCELED) {
      Close(conn, std::string("write failed: ") + uv_strerror(status), &dropped);
    }
    return;
  }
  Pump(conn);
}

void Server::Close(Conn* conn, const std::string& reason, std::atomic<uint64_t>* counter) {
  if (conn->closing.exchange(true)) return;
  if (!reason.empty()) {
    spdlog::warn("host: closing connection from {}: {}", conn->peer.empty() ? "?" : conn->peer,
                 reason);
  }
  if (counter) ++*counter;
  Unlist(conn);
  if (conn->guest) {
    conn->guest = false;
    --guests;
  }
  if (conn->load) {
    conn->load->conns.erase(conn);
    ForgetIfIdle(conn->load);
  }
  auto on_closed = [](uv_handle_t* h) {
    auto* c = static_cast<Conn*>(h->data);
    if (--c->open_handles == 0) c->server->conns.erase(c);  // may free c
  };
  uv_close(reinterpret_cast<uv_handle_t*>(&conn->tcp), on_closed);
  if (conn->open_handles == 2) {
    uv_close(reinterpret_cast<uv_handle_t*>(&conn->handshake_timer), on_closed);
  }
}

bool Server::HasRoom(const Conn* conn) const {
  if (conn->in_flight >= options.max_requests_in_flight) return false;
  return !conn->load || conn->load->bytes_in_flight < options.max_tenant_bytes_in_flight;
}

void Server::Charge(TenantLoad* load, uint64_t bytes) {
  if (load == nullptr) return;
  load->bytes_in_flight += bytes;
  if (load->bytes_in_flight > peak_tenant_bytes) peak_tenant_bytes = load->bytes_in_flight;
}

void Server::Release(const std::shared_ptr<TenantLoad>& load, uint64_t bytes) {
  if (!load || bytes == 0) return;
  const bool was_full = load->bytes_in_flight >= options.max_tenant_bytes_in_flight;
  load->bytes_in_flight -= std::min(bytes, load->bytes_in_flight);
  if (was_full && load->bytes_in_flight < options.max_tenant_bytes_in_flight) {
    // Every connection of the tenant may have stopped reading on its account. Resumed
    // from a fresh loop turn rather than from here, where a Pump may be running already.
    loop->Post([this, load] {
      std::vector<Conn*> resume(load->conns.begin(), load->conns.end());
      for (Conn* c : resume) Pump(c);
    });
  }
  ForgetIfIdle(load);
}

void Server::ForgetIfIdle(const std::shared_ptr<TenantLoad>& load) {
  auto it = tenants.find(load->tenant);
  if (it != tenants.end() && it->second == load && load->conns.empty() &&
      load->bytes_in_flight == 0) {
    tenants.erase(it);
  }
}

void Server::Unlist(Conn* conn) {
  if (!conn->handshaking_listed) return;
  handshaking.erase(conn->handshaking_pos);
  conn->handshaking_listed = false;
  handshaking_now = handshaking.size();
}

}  // namespace

struct HostServer::Impl : Server {};

Result<std::unique_ptr<HostServer>> HostServer::Start(HostServerOptions options) {
  if (options.service == nullptr) return Status::Invalid("host server without a service");
  // libuv writes with write(2): a tenant that resets its connection while an answer is
  // going out would raise SIGPIPE, whose default action kills the whole host. The
  // write's EPIPE closes that one connection instead.
  std::signal(SIGPIPE, SIG_IGN);
  if (options.max_requests_in_flight == 0) options.max_requests_in_flight = 1;
  options.max_connections_per_tenant = std::max<size_t>(options.max_connections_per_tenant, 1);
  options.max_handshaking_connections = std::max<size_t>(options.max_handshaking_connections, 1);
  std::unique_ptr<HostServer> server(new HostServer());
  server->impl_ = std::make_unique<Impl>();
  Impl* impl = server->impl_.get();
  impl->options = std::move(options);
  QUID_ASSIGN_OR_RETURN(impl->loop, EventLoop::Start("quid-host"));
  impl->pool = std::make_unique<ThreadPool>(impl->options.workers);
  Status listening = RunOnLoop(*impl->loop, [impl] { return impl->Listen(); });
  if (!listening.ok()) return listening;
  return server;
}

HostServer::~HostServer() {
  Stop();
}

uint16_t HostServer::port() const {
  return impl_->port;
}

HostServerStats HostServer::stats() const {
  HostServerStats stats;
  stats.connections_accepted = impl_->accepted.load();
  stats.connections_refused = impl_->refused.load();
  stats.connections_dropped = impl_->dropped.load();
  stats.requests_served = impl_->served.load();
  stats.connections_shed = impl_->shed.load();
  stats.handshaking = impl_->handshaking_now.load();
  stats.requests_busy = impl_->busy.load();
  stats.peak_queued_requests = impl_->peak_queued.load();
  stats.peak_tenant_bytes_in_flight = impl_->peak_tenant_bytes.load();
  return stats;
}

void HostServer::Stop() {
  if (!impl_) return;
  std::lock_guard lock(impl_->stop_mu);
  if (impl_->stopped) return;
  impl_->stopped = true;
  Impl* impl = impl_.get();
  (void)RunOnLoop(*impl->loop, [impl] {
    impl->stopping = true;
    if (impl->listener) {
      uv_close(reinterpret_cast<uv_handle_t*>(impl->listener),
               [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
      impl->listener = nullptr;
    }
    std::vector<Conn*> open;
    for (auto& [conn, owner] : impl->conns) open.push_back(conn);
    for (Conn* conn : open) impl->Close(conn, "", nullptr);
    return Status::Ok();
  });
  // Jobs still queued see their connection closing and skip the disk; then the loop
  // runs the close callbacks and stops.
  impl->pool.reset();
  impl->loop.reset();
  spdlog::info("host {} stopped", impl->options.identity.fingerprint());
}

}  // namespace quid::net
