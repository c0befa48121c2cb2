#include "net/host_client.h"

#include <netdb.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <thread>

namespace quid::net::host_client {

OutFrame::~OutFrame() {
  if (core) core->Release(reserved);
}

Status Core::Resolve() {
  const std::string& host = options.host;
  if (uv_ip4_addr(host.c_str(), options.port, reinterpret_cast<sockaddr_in*>(&addr)) == 0 ||
      uv_ip6_addr(host.c_str(), options.port, reinterpret_cast<sockaddr_in6*>(&addr)) == 0) {
    return Status::Ok();
  }
  // A name: resolved once, here on the caller's thread, never on the loop.
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  int rc = getaddrinfo(host.c_str(), nullptr, &hints, &found);
  if (rc != 0 || found == nullptr) {
    return Status::Unavailable("cannot resolve host '" + host + "': " + gai_strerror(rc));
  }
  std::memcpy(&addr, found->ai_addr, std::min<size_t>(found->ai_addrlen, sizeof(addr)));
  freeaddrinfo(found);
  if (addr.ss_family == AF_INET6) {
    reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port = htons(options.port);
  } else {
    reinterpret_cast<sockaddr_in*>(&addr)->sin_port = htons(options.port);
  }
  return Status::Ok();
}

bool Core::Reserve(uint64_t bytes, SteadyClock::time_point deadline) {
  std::unique_lock lock(budget_mu);
  // A frame larger than the whole budget may go alone, or it would never go.
  bool room = budget_cv.wait_until(lock, deadline, [&] {
    return in_flight == 0 || in_flight + bytes <= options.max_bytes_in_flight;
  });
  if (!room) return false;
  in_flight += bytes;
  peak = std::max(peak, in_flight);
  return true;
}

void Core::Release(uint64_t bytes) {
  std::lock_guard lock(budget_mu);
  in_flight -= bytes;
  budget_cv.notify_all();
}

Result<Reply> Core::CallOnce(wire::Request* request, ByteSpan payload,
                             SteadyClock::time_point deadline, bool* timed_out) {
  // A fresh id per attempt: a late answer to an earlier attempt matches nothing.
  request->set_id(next_id.fetch_add(1));
  auto frame = std::make_shared<OutFrame>();
  uint64_t bytes =
      kFrameLengthBytes + 4 + request->ByteSizeLong() + payload.size() + kFrameOverheadBytes;
  if (!Reserve(bytes, deadline)) {
    return Status::Unavailable("host " + where + ": no room to send within " +
                               std::to_string(options.request_timeout_ms) + " ms (" +
                               std::to_string(options.max_bytes_in_flight) + " bytes in flight)");
  }
  frame->core = shared_from_this();
  frame->reserved = bytes;
  QUID_ASSIGN_OR_RETURN(frame->data, EncodeMessage(*request, payload, kFrameOverheadBytes));

  auto pending = std::make_shared<Pending>();
  pending->id = request->id();
  std::shared_ptr<Core> self = shared_from_this();
  loop->Post([self, pending, frame]() mutable { self->Send(pending, std::move(frame)); });
  frame.reset();  // the loop owns it now (or dropped it, if the loop is stopping)
  return Wait(pending, deadline, timed_out);
}

Result<Reply> Core::Wait(const std::shared_ptr<Pending>& pending, SteadyClock::time_point deadline,
                         bool* timed_out) {
  {
    std::unique_lock lock(pending->mu);
    pending->cv.wait_until(lock, deadline, [&] { return pending->done; });
  }
  if (pending->Complete(Status::Unavailable("host " + where + " did not answer within " +
                                            std::to_string(options.request_timeout_ms) + " ms"))) {
    if (timed_out != nullptr) *timed_out = true;
    // The loop forgets the request, so a late answer is dropped by its id.
    std::shared_ptr<Core> self = shared_from_this();
    loop->Post([self, pending] { self->TimedOut(pending); });
  }
  std::lock_guard lock(pending->mu);
  if (!pending->status.ok()) return pending->status;
  return std::move(pending->reply);
}

Result<Reply> Core::Call(wire::Request request, ByteSpan payload) {
  // Retries share the call's deadline: a caller waits request_timeout_ms at most, and a
  // request that already waited that long is not sent again.
  const auto deadline = SteadyClock::now() + std::chrono::milliseconds(options.request_timeout_ms);
  for (int attempt = 0;; ++attempt) {
    bool start_probe = false;
    if (!breaker->Allow(&start_probe)) {
      if (start_probe) StartProbe();
      return Status::Unavailable("host " + where + " is down (circuit open)");
    }
    bool timed_out = false;
    Result<Reply> reply = CallOnce(&request, payload, deadline, &timed_out);
    // Only a failure to reach the host counts against it; its answers (even errors)
    // and a refused key say it is up.
    bool transport_failure = !reply.ok() && reply.status().code() == Code::kUnavailable;
    breaker->Record(!transport_failure, timed_out);
    // A host whose queue is full answers kBusy: it is up (the breaker heard an answer)
    // and asks for the request again a little later, which the backoff gives it.
    const bool busy = reply.ok() && reply->response.code() == static_cast<int32_t>(Code::kBusy);
    if ((!transport_failure && !busy) || timed_out || attempt >= options.retries) return reply;
    auto pause =
        std::chrono::milliseconds(kBackoffMs[std::min<size_t>(attempt, kBackoffMs.size() - 1)]);
    if (SteadyClock::now() + pause >= deadline) return reply;
    std::this_thread::sleep_for(pause);
  }
}

void Core::StartProbe() {
  std::shared_ptr<Core> self = shared_from_this();
  // A loop that is stopping drops this; its store is closing, so no probe is wanted.
  loop->Post([self] { self->ProbeOnLoop(); });
}

namespace {
// One probe in flight: its deadline timer, freed when the timer's handle has closed.
struct Probe {
  uv_timer_t timer{};
  std::shared_ptr<Core> core;
  std::shared_ptr<Pending> pending;
};
}  // namespace

void Core::ProbeOnLoop() {
  wire::Request request;
  request.mutable_ping();
  request.set_id(next_id.fetch_add(1));
  auto frame = std::make_shared<OutFrame>();  // a few bytes: outside the in-flight budget
  Result<Bytes> encoded = EncodeMessage(request, {}, kFrameOverheadBytes);
  if (!encoded.ok()) {
    breaker->RecordProbe(false);
    return;
  }
  frame->data = std::move(encoded).value();

  auto* probe = new Probe;
  probe->core = shared_from_this();
  probe->pending = std::make_shared<Pending>();
  probe->pending->id = request.id();
  probe->timer.data = probe;
  uv_timer_init(loop->loop(), &probe->timer);
  // However the ping ends (answer, connection failure, deadline, store closing), the
  // outcome goes to the breaker and the timer is closed; the Probe dies with it.
  probe->pending->on_complete = [probe](const Status& status) {
    probe->core->breaker->RecordProbe(status.ok() || status.code() != Code::kUnavailable);
    uv_timer_stop(&probe->timer);
    uv_close(reinterpret_cast<uv_handle_t*>(&probe->timer),
             [](uv_handle_t* h) { delete static_cast<Probe*>(h->data); });
  };
  // A probe must be answered within the connect timeout: a reachable host answers a ping
  // at once, and a short probe lets a host that is back be used again soon.
  uv_timer_start(
      &probe->timer,
      [](uv_timer_t* timer) {
        auto* p = static_cast<Probe*>(timer->data);
        std::shared_ptr<Pending> pending = p->pending;
        std::shared_ptr<Core> core = p->core;
        if (pending->Complete(Status::Unavailable("host " + core->where + ": probe unanswered"))) {
          core->TimedOut(pending);  // closes a connection that heard nothing since
        }
      },
      static_cast<uint64_t>(std::max<int64_t>(options.connect_timeout_ms, 1)), 0);
  std::shared_ptr<Pending> pending = probe->pending;
  Send(pending, std::move(frame));
}

void Core::Send(const std::shared_ptr<Pending>& pending, std::shared_ptr<OutFrame> frame) {
  if (closed) {
    pending->Complete(Status::Unavailable("store for host " + where + " is closed"));
    return;
  }
  size_t n = conns.size();
  size_t slot = next_conn++ % n;
  ClientConn* conn = conns[slot].get();
  if (conn == nullptr || conn->state != ClientConn::State::kReady) {
    // Prefer a connection that can write now over waiting for this one's handshake.
    for (size_t i = 1; i < n && conn != nullptr; ++i) {
      ClientConn* other = conns[(slot + i) % n].get();
      if (other != nullptr && other->state == ClientConn::State::kReady) {
        conn = other;
        break;
      }
    }
  }
  if (conn == nullptr) {
    std::shared_ptr<ClientConn> fresh = Connect(slot);
    if (!fresh) {
      pending->Complete(Status::Unavailable("cannot connect to host " + where));
      return;
    }
    conn = fresh.get();
  }
  if (conn->state == ClientConn::State::kReady) {
    if (frame) {
      WriteRequest(conn, pending, std::move(frame));
    } else {
      Reply reply;
      reply.peer = conn->peer;
      reply.channel_binding = conn->channel_binding;
      pending->Complete(Status::Ok(), std::move(reply));
    }
  } else {
    conn->queued.push_back({pending, std::move(frame)});
  }
}

std::shared_ptr<ClientConn> Core::Connect(size_t slot) {
  auto conn = std::make_shared<ClientConn>();
  conn->self = conn;
  conn->core = shared_from_this();
  conn->slot = slot;
  uv_tcp_init(loop->loop(), &conn->tcp);
  uv_timer_init(loop->loop(), &conn->timer);
  conn->tcp.data = conn.get();
  conn->timer.data = conn.get();
  conn->connect_req.data = conn.get();
  conn->open_handles = 2;
  conn->handshake.emplace(Handshake::Initiator(options.identity, pinned));
  conns[slot] = conn;
  uv_timer_start(
      &conn->timer,
      [](uv_timer_t* timer) {
        auto* c = static_cast<ClientConn*>(timer->data);
        c->core->Fail(
            c, Status::Unavailable("host " + c->core->where + ": no connection within " +
                                   std::to_string(c->core->options.connect_timeout_ms) + " ms"));
      },
      static_cast<uint64_t>(std::max<int64_t>(options.connect_timeout_ms, 1)), 0);
  int rc = uv_tcp_connect(&conn->connect_req, &conn->tcp, reinterpret_cast<sockaddr*>(&addr),
                          [](uv_connect_t* req, int status) {
                            auto* c = static_cast<ClientConn*>(req->data);
                            c->core->OnConnected(c, status);
                          });
  if (rc != 0) {
    Fail(conn.get(),
         Status::Unavailable("cannot connect to host " + where + ": " + uv_strerror(rc)));
    return nullptr;
  }
  return conn;
}

void Core::OnConnected(ClientConn* conn, int status) {
  if (conn->state == ClientConn::State::kClosed) return;  // cancelled by Fail
  if (status < 0) {
    Fail(conn, Status::Unavailable("cannot connect to host " + where + ": " + uv_strerror(status)));
    return;
  }
  conn->state = ClientConn::State::kHandshaking;
  uv_tcp_nodelay(&conn->tcp, 1);
  // Notices a host that vanished without a reset while nothing is outstanding.
  uv_tcp_keepalive(&conn->tcp, 1, kKeepAliveSeconds);
  int rc = uv_read_start(
      reinterpret_cast<uv_stream_t*>(&conn->tcp),
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        auto* c = static_cast<ClientConn*>(h->data);
        *buf = uv_buf_init(reinterpret_cast<char*>(c->read_buffer.data()),
                           static_cast<unsigned>(c->read_buffer.size()));
      },
      [](uv_stream_t* s, ssize_t nread, const uv_buf_t*) {
        auto* c = static_cast<ClientConn*>(s->data);
        c->core->OnRead(c, nread);
      });
  if (rc != 0) {
    Fail(conn, Status::Unavailable("host " + where + ": read failed: " + uv_strerror(rc)));
    return;
  }
  Result<Bytes> hello = conn->handshake->Start();
  if (!hello.ok()) {
    Fail(conn, hello.status());
    return;
  }
  Write(conn, std::move(hello.value()), nullptr);
}

void Core::OnRead(ClientConn* conn, ssize_t nread) {
  if (conn->state == ClientConn::State::kClosed || nread == 0) return;
  if (nread < 0) {
    std::string why = nread == UV_EOF
                          ? "closed the connection"
                          : std::string("read failed: ") + uv_strerror(static_cast<int>(nread));
    if (conn->state == ClientConn::State::kHandshaking) {
      // The host checks the tenant's key only after the last handshake message.
      why += " during the handshake (is this tenant admitted there?)";
    }
    Fail(conn, Status::Unavailable("host " + where + " " + why));
    return;
  }
  conn->last_receive_ms = NowMs();
  Status s = conn->reader.Append(ByteSpan(conn->read_buffer.data(), static_cast<size_t>(nread)));
  if (!s.ok()) {
    Fail(conn, Status::Unavailable("host " + where + " sent a bad frame: " + s.message()));
    return;
  }
  while (conn->state != ClientConn::State::kClosed) {
    std::optional<Bytes> frame = conn->reader.Next();
    if (!frame) break;
    OnFrame(conn, std::move(*frame));
  }
  if (conn->state != ClientConn::State::kClosed && conn->reader.failed()) {
    Fail(conn, Status::Unavailable("host " + where + " sent a frame over the size limit"));
  }
}

void Core::OnFrame(ClientConn* conn, Bytes frame) {
  if (conn->state == ClientConn::State::kHandshaking) {
    Result<Bytes> reply = conn->handshake->Receive(frame);
    if (!reply.ok()) {
      // A key that is not the pinned one is kPermission: not a transport failure, so
      // it reaches the caller as it is, without retries.
      Status why = reply.status();
      Fail(conn, Status(why.code(), "host " + where + ": handshake failed: " + why.message()));
      return;
    }
    if (!reply->empty()) Write(conn, std::move(reply.value()), nullptr);
    if (conn->handshake->done()) Ready(conn);
    return;
  }
  if (conn->state != ClientConn::State::kReady || frame.size() < kFrameOverheadBytes) {
    Fail(conn, Status::Unavailable("host " + where + " sent an unexpected frame"));
    return;
  }
  size_t plain_size = frame.size() - kFrameOverheadBytes;
  Status opened = conn->cipher->Open(frame, MutableByteSpan(frame.data(), plain_size));
  if (!opened.ok()) {
    Fail(conn, Status::Unavailable("host " + where +
                                   " sent a frame that failed to open: " + opened.message()));
    return;
  }
  frame.resize(plain_size);
  Reply reply;
  ByteSpan payload;
  Status decoded = DecodeMessage(frame, &reply.response, &payload);
  if (!decoded.ok()) {
    Fail(conn,
         Status::Unavailable("host " + where + " sent an undecodable reply: " + decoded.message()));
    return;
  }
  auto it = conn->pending.find(reply.response.id());
  if (it == conn->pending.end()) return;  // its caller gave up already
  std::shared_ptr<Pending> pending = std::move(it->second);
  conn->pending.erase(it);
  reply.payload_offset = static_cast<size_t>(payload.data() - frame.data());
  reply.payload_size = payload.size();
  reply.plain = std::move(frame);
  pending->Complete(Status::Ok(), std::move(reply));
}

void Core::Ready(ClientConn* conn) {
  conn->state = ClientConn::State::kReady;
  conn->peer = conn->handshake->peer();
  conn->channel_binding = conn->handshake->keys().binding;
  conn->cipher.emplace(conn->handshake->keys());
  conn->handshake.reset();  // wipes the handshake's secrets
  conn->reader.set_max_frame_bytes(kMaxFrameBytes);
  uv_timer_stop(&conn->timer);
  std::deque<Queued> queued;
  queued.swap(conn->queued);
  for (Queued& q : queued) {
    if (conn->state != ClientConn::State::kReady) {
      q.pending->Complete(Status::Unavailable("host " + where + ": connection lost"));
      continue;
    }
    if (q.frame) {
      WriteRequest(conn, q.pending, std::move(q.frame));
    } else {
      Reply reply;
      reply.peer = conn->peer;
      reply.channel_binding = conn->channel_binding;
      q.pending->Complete(Status::Ok(), std::move(reply));
    }
  }
}

void Core::WriteRequest(ClientConn* conn, const std::shared_ptr<Pending>& pending,
                        std::shared_ptr<OutFrame> frame) {
  {
    std::lock_guard lock(pending->mu);
    if (pending->done) return;  // timed out while queued: don't send
  }
  Bytes& data = frame->data;
  // Sealed on the loop thread, in the order of writes, as the frame counter demands.
  const ByteSpan plain(data.data(), data.size() - kFrameOverheadBytes);
  conn->cipher->Seal(plain, MutableByteSpan(data), MessageHeadBytes(plain));
  pending->sent_ms = NowMs();
  conn->pending[pending->id] = pending;
  Write(conn, {}, std::move(frame));
}

void Core::Write(ClientConn* conn, Bytes raw, std::shared_ptr<OutFrame> frame) {
  auto* write = new WriteReq;
  write->conn = conn;
  write->raw = std::move(raw);
  write->frame = std::move(frame);
  Bytes& body = write->frame ? write->frame->data : write->raw;
  uint32_t n = static_cast<uint32_t>(body.size());
  write->prefix = {static_cast<uint8_t>(n >> 24), static_cast<uint8_t>(n >> 16),
                   static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)};
  write->req.data = write;
  uv_buf_t bufs[2] = {uv_buf_init(reinterpret_cast<char*>(write->prefix.data()), kFrameLengthBytes),
                      uv_buf_init(reinterpret_cast<char*>(body.data()), n)};
  int rc =
      uv_write(&write->req, reinterpret_cast<uv_stream_t*>(&conn->tcp), bufs, 2,
               [](uv_write_t* req, int status) {
                 auto* w = static_cast<WriteReq*>(req->data);
                 ClientConn* c = w->conn;
                 delete w;  // releases the frame's share of the budget
                 if (status < 0 && status != UV_ECANCELED) {
                   c->core->Fail(c, Status::Unavailable("host " + c->core->where +
                                                        ": write failed: " + uv_strerror(status)));
                 }
               });
  if (rc != 0) {
    delete write;
    Fail(conn, Status::Unavailable("host " + where + ": write failed: " + uv_strerror(rc)));
  }
}

void Core::Fail(ClientConn* conn, const Status& status) {
  if (conn->state == ClientConn::State::kClosed) return;
  conn->state = ClientConn::State::kClosed;
  if (conns[conn->slot].get() == conn) conns[conn->slot].reset();
  spdlog::debug("{}", status.message());
  for (auto& [id, pending] : conn->pending) pending->Complete(status);
  conn->pending.clear();
  for (Queued& q : conn->queued) q.pending->Complete(status);
  conn->queued.clear();
  auto on_closed = [](uv_handle_t* h) {
    auto* c = static_cast<ClientConn*>(h->data);
    if (--c->open_handles > 0) return;
    c->core.reset();
    c->self.reset();  // frees c
  };
  // Pending writes and the connect request are cancelled (their callbacks run first).
  uv_close(reinterpret_cast<uv_handle_t*>(&conn->tcp), on_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&conn->timer), on_closed);
}

void Core::TimedOut(const std::shared_ptr<Pending>& pending) {
  for (const std::shared_ptr<ClientConn>& held : conns) {
    ClientConn* conn = held.get();
    if (conn == nullptr) continue;
    auto it = conn->pending.find(pending->id);
    if (it != conn->pending.end()) {
      conn->pending.erase(it);
      // Nothing at all heard since this request left: the host (or the path to it) is
      // stuck, not merely slow. Closing frees whatever sits in the socket's queue.
      if (conn->last_receive_ms < pending->sent_ms) {
        Fail(conn, Status::Unavailable("host " + where + " stopped answering"));
      }
      return;
    }
    auto queued = std::find_if(conn->queued.begin(), conn->queued.end(),
                               [&](const Queued& q) { return q.pending == pending; });
    if (queued != conn->queued.end()) {
      conn->queued.erase(queued);
      return;
    }
  }
}

void Core::CloseAll() {
  closed = true;
  for (size_t i = 0; i < conns.size(); ++i) {
    if (conns[i]) Fail(conns[i].get(), Status::Unavailable("store for host " + where + " closed"));
  }
}

Result<std::shared_ptr<Core>> MakeCore(RemoteStoreOptions options, std::optional<PublicKey> pinned,
                                       EventLoop* loop) {
  if (loop == nullptr) return Status::Invalid("remote store without an event loop");
  auto core = std::make_shared<Core>();
  core->options = std::move(options);
  core->options.connections = std::max<size_t>(core->options.connections, 1);
  core->options.retries = std::max(core->options.retries, 0);
  core->pinned = pinned;
  core->loop = loop;
  core->where = core->options.host + ":" + std::to_string(core->options.port);
  core->breaker = std::make_unique<CircuitBreaker>(core->where, core->options.breaker_failures,
                                                   core->options.breaker_cooldown_ms, nullptr,
                                                   core->options.breaker_opens_on_timeout);
  core->conns.resize(core->options.connections);
  QUID_RETURN_IF_ERROR(core->Resolve());
  return core;
}

// Runs CloseAll on the loop and waits (bounded: a loop that is already stopping drops
// the call, and then its handles are closed by the loop itself).
void CloseOnLoop(const std::shared_ptr<Core>& core) {
  struct Sync {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
  };
  auto sync = std::make_shared<Sync>();
  core->loop->Post([core, sync] {
    core->CloseAll();
    std::lock_guard lock(sync->mu);
    sync->done = true;
    sync->cv.notify_all();
  });
  std::unique_lock lock(sync->mu);
  sync->cv.wait_for(lock, std::chrono::seconds(5), [&] { return sync->done; });
}

std::string IdBytes(const ShardId& id) {
  return std::string(reinterpret_cast<const char*>(id.bytes.data()), id.bytes.size());
}

}  // namespace quid::net::host_client
