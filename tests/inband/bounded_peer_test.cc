// Bounded peers (issue 9, point 5): a peer that starts rekeys (RFC 8548
// §3.8) and never reads our answers ends with TOO_MANY_REKEYS, and what it
// makes us queue stays under the documented bound.
//
// The hostile peer speaks the real protocol: an Engine runs its handshake,
// and its rekey frames are sealed by hand from the key log (mk[0]) with the
// RFC 8548 §3.6/§3.8 framing: control = rekey, clen, then the flags byte
// and the data sealed under k_ab[j+1] with the frame-ID nonce.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "core_transport/engine/aead.h"
#include "core_transport/engine/clock.h"
#include "core_transport/engine/engine.h"
#include "core_transport/engine/frame.h"
#include "core_transport/engine/init_messages.h"
#include "core_transport/engine/key_schedule.h"
#include "core_transport/engine/rng.h"
#include "core_transport/inband/connection.h"

namespace tcpcrypt::inband {
namespace {

constexpr int kFloodFrames = 200000;
// What a peer can make us queue: the read pause bound plus what one
// receive can add before the engine refuses more rekeys.
constexpr size_t kDocumentedBound =
    kReadPauseOutputBytes + kMaxUnsentRekeyAnswers * kRekeyAnswerLen;
static_assert(kDocumentedBound == 1377538);

// RekeyForger seals the frames an active opener sends, each starting a new
// key generation, from the opener's mk[0] (its key log entry).
class RekeyForger {
 public:
  RekeyForger(const KeyLogEntry& log, uint64_t first_offset)
      : kab_(log.a_to_b_uses_kab), cipher_(log.cipher), offset_(first_offset) {
    mk_.CopyFrom(log.mk0.span());
  }

  // Append seals one frame with rekey = 1 carrying |data| onto |out|.
  [[nodiscard]] bool Append(ByteSpan data, std::vector<uint8_t>* out) {
    MasterKey next;
    if (!NextMasterKey(mk_, &next)) return false;  // RFC 8548 §3.8: mk[j+1]
    mk_ = std::move(next);
    TrafficKey key;
    AeadContext aead;
    if (!DeriveTrafficKey(mk_, kab_, cipher_, &key) || !aead.Init(cipher_, key.key())) {
      return false;
    }
    const uint8_t flags = 0;
    const size_t clen = 1 + data.size() + kAeadTagLen;
    const auto header = FrameHeader(kControlRekey, static_cast<uint16_t>(clen));
    const size_t at = out->size();
    out->resize(at + kFrameHeaderLen + clen);
    std::memcpy(out->data() + at, header.data(), header.size());
    const auto nonce = FrameNonce(key.nonce_randomizer(), offset_);
    if (!aead.Seal(nonce, header, ByteSpan(&flags, 1), data,
                   out->data() + at + kFrameHeaderLen)) {
      return false;
    }
    offset_ += kFrameHeaderLen + clen;
    return true;
  }

 private:
  MasterKey mk_;
  bool kab_;
  Cipher cipher_;
  uint64_t offset_;
};

// The active opener's first frame ID: Init1 (it sent nothing else).
uint64_t FirstFrameOffset(const EngineConfig& c) {
  return Init1Length(c.ciphers.size(), c.teps.front());
}

EngineConfig AttackerConfig() {
  EngineConfig c;
  c.export_keys = true;
  return c;
}

// --- engines only, no sockets ---------------------------------------------

// Pump moves each engine's output to the other until both are quiet.
void Pump(Engine& a, Engine& b) {
  for (int i = 0; i < 16; ++i) {
    const ByteSpan ao = a.PendingOutput();
    const ByteSpan bo = b.PendingOutput();
    if (ao.empty() && bo.empty()) return;
    if (!ao.empty()) {
      ASSERT_EQ(b.Feed(ao), Error::kNone);
      a.ConsumeOutput(ao.size());
    }
    if (!bo.empty()) {
      ASSERT_EQ(a.Feed(bo), Error::kNone);
      b.ConsumeOutput(bo.size());
    }
  }
}

struct EnginePair {
  EngineConfig config = AttackerConfig();
  Engine a{Engine::Role::kActive, config, SystemRng::Instance(), SteadyClock::Instance()};
  Engine b{Engine::Role::kPassive, EngineConfig{}, SystemRng::Instance(),
           SteadyClock::Instance()};
};

TEST(BoundedPeerEngineTest, SixtyFiveUnsentAnswersFailWithTooManyRekeys) {
  EnginePair p;
  ASSERT_EQ(p.a.Start(), Error::kNone);
  ASSERT_EQ(p.b.Start(), Error::kNone);
  Pump(p.a, p.b);
  ASSERT_TRUE(p.a.established() && p.b.established());
  ASSERT_NE(p.a.key_log(), nullptr);
  RekeyForger forge(*p.a.key_log(), FirstFrameOffset(p.config));

  // 64 rekeys, none of B's answers sent: all answered and queued.
  std::vector<uint8_t> frames;
  for (size_t i = 0; i < kMaxUnsentRekeyAnswers; ++i) ASSERT_TRUE(forge.Append({}, &frames));
  ASSERT_EQ(p.b.Feed(frames), Error::kNone);
  EXPECT_EQ(p.b.PendingOutput().size(), kMaxUnsentRekeyAnswers * kRekeyAnswerLen);
  EXPECT_EQ(p.b.remote_generation(), kMaxUnsentRekeyAnswers);

  // The 65th, while all 64 answers are still unsent: refused.
  frames.clear();
  ASSERT_TRUE(forge.Append({}, &frames));
  EXPECT_EQ(p.b.Feed(frames), Error::kTooManyRekeys);
  EXPECT_TRUE(p.b.failed());
  EXPECT_EQ(p.b.error(), Error::kTooManyRekeys);
  EXPECT_EQ(ErrorName(Error::kTooManyRekeys), "TOO_MANY_REKEYS");
  EXPECT_EQ(p.b.PendingOutput().size(), kMaxUnsentRekeyAnswers * kRekeyAnswerLen);
}

TEST(BoundedPeerEngineTest, AnswersThatWereSentDoNotCount) {
  EnginePair p;
  ASSERT_EQ(p.a.Start(), Error::kNone);
  ASSERT_EQ(p.b.Start(), Error::kNone);
  Pump(p.a, p.b);
  ASSERT_NE(p.a.key_log(), nullptr);
  RekeyForger forge(*p.a.key_log(), FirstFrameOffset(p.config));
  // 200,000 rekeys, B's carrier sending each batch of answers in between:
  // a peer that reads our answers may rekey as often as it likes.
  std::vector<uint8_t> frames;
  for (int i = 0; i < kFloodFrames; i += 50) {
    frames.clear();
    for (int k = 0; k < 50; ++k) ASSERT_TRUE(forge.Append({}, &frames));
    ASSERT_EQ(p.b.Feed(frames), Error::kNone) << "after " << i;
    EXPECT_EQ(p.b.PendingOutput().size(), 50 * kRekeyAnswerLen);
    p.b.ConsumeOutput(p.b.PendingOutput().size());
  }
  EXPECT_EQ(p.b.remote_generation(), static_cast<uint64_t>(kFloodFrames));
  EXPECT_FALSE(p.b.failed());
}

TEST(BoundedPeerEngineTest, HonestRekeysInBothDirectionsStillWork) {
  EnginePair p;
  ASSERT_EQ(p.a.Start(), Error::kNone);
  ASSERT_EQ(p.b.Start(), Error::kNone);
  Pump(p.a, p.b);
  for (int i = 0; i < 1000; ++i) {
    ASSERT_EQ((i % 2 == 0 ? p.a : p.b).RequestRekey(), Error::kNone);
    Pump(p.a, p.b);
  }
  EXPECT_FALSE(p.a.failed());
  EXPECT_FALSE(p.b.failed());
  EXPECT_EQ(p.a.local_generation(), 1000u);
  EXPECT_EQ(p.b.local_generation(), 1000u);
}

// --- over a socket ----------------------------------------------------------

int ConnectLoopback(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Attacker runs the hostile peer on its own thread: a real handshake
// (blocking socket), then |kFloodFrames| rekey frames, each carrying
// |data_per_frame| bytes, sent without ever reading again.
class Attacker {
 public:
  Attacker(uint16_t port, size_t data_per_frame) : port_(port), data_(data_per_frame, 'x') {}
  ~Attacker() {
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) ::close(fd_);
  }
  void Start() { thread_ = std::thread([this] { Run(); }); }
  void Join() {
    if (thread_.joinable()) thread_.join();
  }
  // WaitStarted waits until the flood began (64 KiB handed to the kernel)
  // or the attacker gave up; false then.
  bool WaitStarted() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      if (flooding_.load() || done_.load()) return flooding_.load();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return false;
  }
  size_t flood_bytes() const { return flood_bytes_; }
  bool handshake_ok() const { return handshake_ok_; }

 private:
  void Run() {
    Work();
    done_ = true;
  }
  void Work() {
    fd_ = ConnectLoopback(port_);
    if (fd_ < 0) return;
    const EngineConfig config = AttackerConfig();
    Engine e(Engine::Role::kActive, config, SystemRng::Instance(), SteadyClock::Instance());
    if (e.Start() != Error::kNone) return;
    while (!e.established() || !e.PendingOutput().empty()) {
      const ByteSpan out = e.PendingOutput();
      if (!out.empty()) {
        const ssize_t n = ::send(fd_, out.data(), out.size(), MSG_NOSIGNAL);
        if (n <= 0) return;
        e.ConsumeOutput(static_cast<size_t>(n));
        continue;
      }
      const MutableByteSpan in = e.InputBuffer();
      const ssize_t n = ::recv(fd_, in.data(), in.size(), 0);
      if (n <= 0 || e.CommitInput(static_cast<size_t>(n)) != Error::kNone) return;
    }
    handshake_ok_ = true;
    RekeyForger forge(*e.key_log(), FirstFrameOffset(config));
    std::vector<uint8_t> flood;
    flood.reserve(kFloodFrames * (kRekeyAnswerLen + data_.size()));
    const ByteSpan data(reinterpret_cast<const uint8_t*>(data_.data()), data_.size());
    for (int i = 0; i < kFloodFrames; ++i) {
      if (!forge.Append(data, &flood)) return;
    }
    flood_bytes_ = flood.size();
    size_t sent = 0;
    while (sent < flood.size()) {
      const ssize_t n =
          ::send(fd_, flood.data() + sent, std::min<size_t>(flood.size() - sent, 16384),
                 MSG_NOSIGNAL);
      if (n <= 0) return;  // the victim closed (reset): expected
      sent += static_cast<size_t>(n);
      if (sent >= 65536) flooding_ = true;
    }
  }

  const uint16_t port_;
  const std::string data_;
  std::thread thread_;
  int fd_ = -1;
  std::atomic<bool> flooding_{false};
  std::atomic<bool> done_{false};
  bool handshake_ok_ = false;
  size_t flood_bytes_ = 0;
};

Options VictimOptions() {
  Options o;
  o.handshake_timeout_ms = 10000;
  o.io_timeout_ms = 20000;
  return o;
}

// RunNonBlockingVictim drives the victim from an event loop, sampling its
// queued output after every event, until it fails or 30 s pass.
void RunNonBlockingVictim(size_t data_per_frame) {
  Status st;
  auto listener = Listener::Listen("127.0.0.1", 0, 4, &st);
  ASSERT_NE(listener, nullptr) << st.message;
  Attacker attacker(listener->port(), data_per_frame);
  attacker.Start();
  auto conn = listener->Accept(VictimOptions(), &st, 10000);
  ASSERT_NE(conn, nullptr) << st.message;
  ASSERT_TRUE(conn->Handshake().ok()) << conn->status().message;
  ASSERT_TRUE(attacker.WaitStarted());
  auto nb = NonBlockingConnection::FromConnection(std::move(conn));

  size_t max_queued = 0;
  size_t plaintext = 0;
  std::vector<uint8_t> buf(65536);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!nb->failed() && std::chrono::steady_clock::now() < deadline) {
    short events = 0;
    if (nb->wants_read()) events |= POLLIN;
    if (nb->wants_write()) events |= POLLOUT;
    pollfd p{nb->fd(), events, 0};
    if (::poll(&p, 1, 1000) < 0) break;
    if ((p.revents & (POLLIN | POLLHUP | POLLERR)) != 0) nb->OnReadable();
    max_queued = std::max(max_queued, nb->pending_output());
    if ((p.revents & POLLOUT) != 0) nb->OnWritable();
    max_queued = std::max(max_queued, nb->pending_output());
    for (ssize_t n; (n = nb->Read(buf)) > 0;) plaintext += static_cast<size_t>(n);
  }
  EXPECT_TRUE(attacker.handshake_ok());
  ASSERT_TRUE(nb->failed()) << "the flood did not end the connection";
  EXPECT_EQ(nb->status().kind, Status::Kind::kEngine);
  EXPECT_EQ(nb->status().engine_error, Error::kTooManyRekeys) << nb->status().message;
  EXPECT_NE(nb->status().message.find("TOO_MANY_REKEYS"), std::string::npos);
  EXPECT_LE(max_queued, kDocumentedBound);
  // In fact it never held more than the unsent-answer bound.
  EXPECT_LE(max_queued, kMaxUnsentRekeyAnswers * kRekeyAnswerLen);
  EXPECT_LT(plaintext, static_cast<size_t>(kFloodFrames) * data_per_frame + 1);
  attacker.Join();
  EXPECT_GE(attacker.flood_bytes(), static_cast<size_t>(kFloodFrames) * kRekeyAnswerLen);
}

TEST(BoundedPeerTest, EmptyRekeyFloodEndsWithNamedErrorNonBlocking) {
  RunNonBlockingVictim(0);  // 200,000 x 20 bytes = 4.0 MB
}

TEST(BoundedPeerTest, DataCarryingRekeyFloodEndsWithNamedErrorNonBlocking) {
  RunNonBlockingVictim(1);  // 200,000 x 21 bytes = 4.2 MB
}

TEST(BoundedPeerTest, RekeyFloodEndsBlockingReadWithNamedError) {
  Status st;
  auto listener = Listener::Listen("127.0.0.1", 0, 4, &st);
  ASSERT_NE(listener, nullptr) << st.message;
  Attacker attacker(listener->port(), 1);
  attacker.Start();
  auto conn = listener->Accept(VictimOptions(), &st, 10000);
  ASSERT_NE(conn, nullptr) << st.message;
  ASSERT_TRUE(conn->Handshake().ok()) << conn->status().message;
  ASSERT_TRUE(attacker.WaitStarted());
  std::vector<uint8_t> buf(65536);
  ssize_t n = 0;
  size_t max_queued = 0;
  while ((n = conn->Read(buf, &st)) > 0) {
    max_queued = std::max(max_queued, conn->engine().PendingOutput().size());
  }
  EXPECT_EQ(n, -1);
  EXPECT_EQ(st.engine_error, Error::kTooManyRekeys) << st.message;
  EXPECT_EQ(conn->status().engine_error, Error::kTooManyRekeys);
  EXPECT_LE(max_queued, kDocumentedBound);
  EXPECT_LE(conn->engine().PendingOutput().size(), kDocumentedBound);
  attacker.Join();
}

// The carrier's own bound: while we owe the peer more than
// kReadPauseOutputBytes (it does not read), we read nothing from it.
TEST(BoundedPeerTest, ReadingPausesWhileThePeerDoesNotReadWhatWeOwe) {
  Status st;
  auto listener = Listener::Listen("127.0.0.1", 0, 4, &st);
  ASSERT_NE(listener, nullptr) << st.message;
  std::unique_ptr<Connection> client;
  std::thread t([&] {
    Status cs;
    client = Connection::Connect("127.0.0.1", listener->port(), VictimOptions(), &cs);
  });
  auto conn = listener->Accept(VictimOptions(), &st, 10000);
  ASSERT_NE(conn, nullptr) << st.message;
  ASSERT_TRUE(conn->Handshake().ok());
  t.join();
  ASSERT_NE(client, nullptr);
  auto nb = NonBlockingConnection::FromConnection(std::move(conn));
  // 24 MiB: more than the kernel's socket buffers hold on loopback.
  std::vector<uint8_t> big(size_t{24} << 20, 0x5a);
  ASSERT_TRUE(nb->Write(big).ok());
  ASSERT_GT(nb->pending_output(), kReadPauseOutputBytes);
  EXPECT_FALSE(nb->wants_read());
  // The client writes; the server does not read it while it owes 20+ MiB.
  ASSERT_TRUE(client->WriteAll(std::vector<uint8_t>(1000, 1)).ok());
  nb->OnReadable();
  EXPECT_EQ(nb->engine().plaintext_available(), 0u);
  // Once the client reads what it is owed, the server reads again.
  std::vector<uint8_t> buf(1 << 20);
  size_t got = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (nb->pending_output() > kReadPauseOutputBytes &&
         std::chrono::steady_clock::now() < deadline) {
    const ssize_t n = client->Read(buf, &st);
    ASSERT_GT(n, 0) << st.message;
    got += static_cast<size_t>(n);
    nb->OnWritable();
  }
  EXPECT_TRUE(nb->wants_read());
  EXPECT_GT(got, 0u);
}

}  // namespace
}  // namespace tcpcrypt::inband
