// Plain blocking sockets on loopback for tests: a client that does not play by the
// rules (raw frames, a handshake by hand, sealed frames it builds itself).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <memory>
#include <optional>

#include "net/secure_channel.h"
#include "net/wire.h"

namespace quid::net::raw_client {

inline int64_t MsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               start)
      .count();
}

inline int ConnectRaw(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{3, 0};  // no test waits on a socket for longer
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  return fd;
}

inline bool SendAll(int fd, ByteSpan data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data = data.subspan(static_cast<size_t>(n));
  }
  return true;
}

inline bool RecvExact(int fd, uint8_t* out, size_t n) {
  while (n > 0) {
    ssize_t got = ::recv(fd, out, n, 0);
    if (got <= 0) return false;
    out += got;
    n -= static_cast<size_t>(got);
  }
  return true;
}

inline std::optional<Bytes> RecvFrame(int fd) {
  uint8_t prefix[4];
  if (!RecvExact(fd, prefix, 4)) return std::nullopt;
  uint32_t n = uint32_t{prefix[0]} << 24 | uint32_t{prefix[1]} << 16 | uint32_t{prefix[2]} << 8 |
               uint32_t{prefix[3]};
  if (n > kMaxFrameBytes) return std::nullopt;
  Bytes body(n);
  if (!RecvExact(fd, body.data(), n)) return std::nullopt;
  return body;
}

// True when the peer closes (EOF or reset) within `timeout_ms`; whatever it sends first
// is read and ignored.
inline bool ClosedByPeer(int fd, int timeout_ms) {
  auto start = std::chrono::steady_clock::now();
  uint8_t buf[4096];
  while (MsSince(start) < timeout_ms) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) return true;
  }
  return false;
}

// A tenant's side of the handshake over a blocking socket, then sealed frames by hand.
struct RawSession {
  int fd = -1;
  std::optional<FrameCipher> cipher;

  ~RawSession() {
    if (fd >= 0) ::close(fd);
  }

  static std::unique_ptr<RawSession> Open(uint16_t port, const NodeIdentity& tenant,
                                          const PublicKey& host_key) {
    auto session = std::make_unique<RawSession>();
    session->fd = ConnectRaw(port);
    if (session->fd < 0) return nullptr;
    Handshake hs = Handshake::Initiator(tenant, host_key);
    Result<Bytes> hello = hs.Start();
    if (!hello.ok() || !SendAll(session->fd, WithLengthPrefix(*hello))) return nullptr;
    std::optional<Bytes> answer = RecvFrame(session->fd);
    if (!answer) return nullptr;
    Result<Bytes> last = hs.Receive(*answer);
    if (!last.ok() || !hs.done() || !SendAll(session->fd, WithLengthPrefix(*last))) {
      return nullptr;
    }
    session->cipher.emplace(hs.keys());
    return session;
  }

  // A sealed frame, length prefix included, ready to send.
  Bytes Seal(const wire::Request& request, ByteSpan payload = {}) {
    Result<Bytes> plain = EncodeMessage(request, payload, kFrameOverheadBytes);
    EXPECT_TRUE(plain.ok());
    Bytes body = std::move(plain.value());
    const ByteSpan message(body.data(), body.size() - kFrameOverheadBytes);
    cipher->Seal(message, MutableByteSpan(body), MessageHeadBytes(message));
    return WithLengthPrefix(body);
  }

  std::optional<wire::Response> Receive() {
    std::optional<Bytes> frame = RecvFrame(fd);
    if (!frame || frame->size() < kFrameOverheadBytes) return std::nullopt;
    size_t plain_size = frame->size() - kFrameOverheadBytes;
    if (!cipher->Open(*frame, MutableByteSpan(frame->data(), plain_size)).ok()) {
      return std::nullopt;
    }
    wire::Response response;
    ByteSpan payload;
    if (!DecodeMessage(ByteSpan(frame->data(), plain_size), &response, &payload).ok()) {
      return std::nullopt;
    }
    return response;
  }
};

inline wire::Request PingRequest(uint64_t id) {
  wire::Request request;
  request.set_id(id);
  request.mutable_ping();
  return request;
}

}  // namespace quid::net::raw_client
