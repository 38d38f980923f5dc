#include "net/websocket_client.hpp"

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include "net/net_testing.hpp"
#include "net/server.hpp"

namespace infernet::net {
namespace {

namespace beast = boost::beast;
namespace ssl = asio::ssl;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using testing::ClientEvents;
using testing::ServerEvents;

TEST(ParseWsUrl, Accepts) {
  auto plain = parse_ws_url("ws://relay.example.com");
  ASSERT_TRUE(plain) << plain.error().message;
  EXPECT_FALSE(plain->tls);
  EXPECT_EQ(plain->host, "relay.example.com");
  EXPECT_EQ(plain->port, 80);
  EXPECT_EQ(plain->target, "/");

  auto secure = parse_ws_url("WSS://Relay.Example.com:8443/nostr?x=1&y=2");
  ASSERT_TRUE(secure);
  EXPECT_TRUE(secure->tls);
  EXPECT_EQ(secure->host, "relay.example.com");
  EXPECT_EQ(secure->port, 8443);
  EXPECT_EQ(secure->target, "/nostr?x=1&y=2");

  auto v6 = parse_ws_url("wss://[::1]:7777");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 7777);

  auto query_only = parse_ws_url("ws://127.0.0.1:1?a");
  ASSERT_TRUE(query_only);
  EXPECT_EQ(query_only->target, "/?a");
  EXPECT_EQ(parse_ws_url("wss://h")->port, 443);
}

TEST(ParseWsUrl, RejectsWithReason) {
  struct Case {
    const char* url;
    const char* message;
  };
  const Case cases[] = {
      {"http://example.com", "scheme must be ws or wss"},
      {"example.com", "must start with ws:// or wss://"},
      {"ws://", "host is empty"},
      {"ws://:80/", "host is empty"},
      {"ws://user:pw@example.com", "user info"},
      {"ws://example.com:0", "port must be 1-65535"},
      {"ws://example.com:65536", "port must be 1-65535"},
      {"ws://example.com:99999999999999999999", "port must be 1-65535"},
      {"ws://example.com:80a", "port must be 1-65535"},
      {"ws://example.com:", "port must be 1-65535"},
      {"ws://example.com/#frag", "fragments"},
      {"ws://exa mple.com", "space or control"},
      {"ws://[::1", "unclosed '['"},
      {"ws://[nothex]:1", "not an IPv6 address"},
      {"ws://ex%41mple.com", "host contains '%'"},
  };
  for (const auto& c : cases) {
    auto parsed = parse_ws_url(c.url);
    ASSERT_FALSE(parsed) << c.url;
    EXPECT_EQ(parsed.error().code, ErrorCode::kInvalidInput);
    EXPECT_NE(parsed.error().message.find(c.message), std::string::npos)
        << c.url << ": " << parsed.error().message;
  }
}

TEST(WebSocketClient, CreateRejectsBadUrlAndCaFile) {
  asio::io_context io;
  auto bad_url = WebSocketClient::create(io, "http://x", {});
  ASSERT_FALSE(bad_url);
  EXPECT_EQ(bad_url.error().code, ErrorCode::kInvalidInput);
  ClientOptions options;
  options.ca_file = "/nonexistent/ca.pem";
  auto bad_ca = WebSocketClient::create(io, "wss://localhost:1", {}, options);
  ASSERT_FALSE(bad_ca);
  EXPECT_EQ(bad_ca.error().code, ErrorCode::kIo);
  EXPECT_NE(bad_ca.error().message.find("/nonexistent/ca.pem"), std::string::npos);
}

TEST(WebSocketClient, ConnectionRefusedReportsConnect) {
  IoPool pool(1);
  pool.start();
  // Bind a port and close it again, so nothing listens there.
  uint16_t port = 0;
  {
    asio::io_context io;
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    port = acceptor.local_endpoint().port();
  }
  auto events = std::make_shared<ClientEvents>();
  auto client =
      WebSocketClient::create(pool.io_context(), testing::ws_url(port), ClientEvents::handlers(events));
  ASSERT_TRUE(client);
  EXPECT_FALSE((*client)->send("too early"));
  (*client)->connect();
  ASSERT_TRUE(events->wait_closed());
  EXPECT_NE(events->close_message().find("connect 127.0.0.1:" + std::to_string(port)), std::string::npos)
      << events->close_message();
  std::lock_guard lock(events->mu);
  EXPECT_EQ(events->closed->code, ErrorCode::kIo);
  EXPECT_FALSE(events->opened);
}

TEST(WebSocketClient, OversizedIncomingMessageEndsConnection) {
  ServerHandlers handlers;
  class Flood : public WebSocketHandler {
   public:
    explicit Flood(std::shared_ptr<WebSocketConnection> c) : connection_(std::move(c)) {}
    void on_text(std::string_view message) override {
      connection_->send(std::string(std::stoul(std::string(message)), 'z'));
    }
    void on_close() override {}

   private:
    std::shared_ptr<WebSocketConnection> connection_;
  };
  handlers.websocket = [](std::shared_ptr<WebSocketConnection> c, const HttpRequest&) {
    return std::make_unique<Flood>(std::move(c));
  };
  Server server({}, handlers);
  ASSERT_TRUE(server.start());
  ClientOptions options;
  options.max_message_bytes = 100;
  auto events = std::make_shared<ClientEvents>();
  auto client = WebSocketClient::create(server.io_context(), testing::ws_url(server.port()),
                                        ClientEvents::handlers(events), options);
  ASSERT_TRUE(client);
  (*client)->connect();
  ASSERT_TRUE(events->wait_open());
  (*client)->send("100");
  ASSERT_TRUE(events->wait_messages(1));
  (*client)->send("101");
  ASSERT_TRUE(events->wait_closed());
  std::lock_guard lock(events->mu);
  EXPECT_EQ(events->closed->code, ErrorCode::kLimitExceeded);
  EXPECT_EQ(events->messages.size(), 1u);
}

TEST(WebSocketClient, CloseBeforeOpenAborts) {
  auto server_events = std::make_shared<ServerEvents>();
  Server server({}, testing::echo_handlers(server_events));
  ASSERT_TRUE(server.start());
  auto events = std::make_shared<ClientEvents>();
  auto client = WebSocketClient::create(server.io_context(), testing::ws_url(server.port()),
                                        ClientEvents::handlers(events));
  ASSERT_TRUE(client);
  (*client)->connect();
  (*client)->close();
  ASSERT_TRUE(events->wait_closed());
  // Either the abort won or the handshake finished first and close() then closed it; once either way.
  EXPECT_EQ(events->close_message(), "closed by client");
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::lock_guard lock(events->mu);
  EXPECT_EQ(events->close_count, 1);
}

// ---- wss: a self-signed certificate made at test time, served by a test-local TLS WebSocket echo server.

template <class T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION, X509_EXTENSION_free>>;

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  long size = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(size));
}

struct SelfSigned {
  std::string cert_pem;
  std::string key_pem;
};

// A P-256 key and a certificate for CN and SAN "localhost" (DNS only: 127.0.0.1 must not match it).
SelfSigned make_self_signed() {
  PkeyPtr key(EVP_EC_gen("P-256"));
  X509Ptr cert(X509_new());
  if (!key || !cert) throw std::runtime_error("openssl: cannot allocate key or certificate");
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("localhost"),
                             -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  X509V3_CTX context;
  X509V3_set_ctx_nodb(&context);
  X509V3_set_ctx(&context, cert.get(), cert.get(), nullptr, nullptr, 0);
  ExtPtr san(X509V3_EXT_conf_nid(nullptr, &context, NID_subject_alt_name, "DNS:localhost"));
  if (!san) throw std::runtime_error("openssl: cannot make subjectAltName");
  X509_add_ext(cert.get(), san.get(), -1);
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) throw std::runtime_error("openssl: cannot sign");

  BioPtr cert_bio(BIO_new(BIO_s_mem()));
  BioPtr key_bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(cert_bio.get(), cert.get());
  PEM_write_bio_PrivateKey(key_bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  return SelfSigned{bio_text(cert_bio.get()), bio_text(key_bio.get())};
}

// Echoes text messages over TLS on 127.0.0.1, on its own thread, until destroyed.
class TlsEchoServer {
 public:
  explicit TlsEchoServer(const SelfSigned& identity)
      : tls_(ssl::context::tls_server),
        acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    tls_.use_certificate_chain(asio::buffer(identity.cert_pem));
    tls_.use_private_key(asio::buffer(identity.key_pem), ssl::context::pem);
    asio::co_spawn(io_, accept_loop(), asio::detached);
    thread_ = std::thread([this] { io_.run(); });
  }
  ~TlsEchoServer() {
    io_.stop();
    thread_.join();
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }

 private:
  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
      asio::co_spawn(io_, echo(std::move(socket)), asio::detached);
    }
  }
  asio::awaitable<void> echo(tcp::socket socket) {
    websocket::stream<beast::ssl_stream<beast::tcp_stream>> ws(std::move(socket), tls_);
    auto token = asio::as_tuple(asio::use_awaitable);
    auto [handshake_ec] = co_await ws.next_layer().async_handshake(ssl::stream_base::server, token);
    if (handshake_ec) co_return;  // the client refused our certificate
    auto [accept_ec] = co_await ws.async_accept(token);
    if (accept_ec) co_return;
    for (;;) {
      beast::flat_buffer buffer;
      auto [read_ec, read_size] = co_await ws.async_read(buffer, token);
      if (read_ec) co_return;
      ws.text(ws.got_text());
      auto [write_ec, written] = co_await ws.async_write(buffer.data(), token);
      if (write_ec) co_return;
    }
  }

  asio::io_context io_;
  ssl::context tls_;
  tcp::acceptor acceptor_;
  std::thread thread_;
};

class Wss : public ::testing::Test {
 protected:
  void SetUp() override {
    identity_ = make_self_signed();
    ca_file_ = std::filesystem::temp_directory_path() /
               ("infernet-net-test-ca-" + std::to_string(getpid()) + ".pem");
    std::ofstream(ca_file_) << identity_.cert_pem;
    server_ = std::make_unique<TlsEchoServer>(identity_);
    pool_.start();
  }
  void TearDown() override { std::filesystem::remove(ca_file_); }

  // Connects to the TLS server under `host` and returns what the client reported.
  std::shared_ptr<ClientEvents> connect(const std::string& host, ClientOptions options,
                                        std::shared_ptr<WebSocketClient>* out = nullptr) {
    auto events = std::make_shared<ClientEvents>();
    auto client = WebSocketClient::create(pool_.io_context(),
                                          "wss://" + host + ":" + std::to_string(server_->port()) + "/",
                                          ClientEvents::handlers(events), options);
    EXPECT_TRUE(client) << client.error().message;
    if (!client) return events;
    (*client)->connect();
    events->wait_open();
    if (out) *out = *client;
    return events;
  }

  SelfSigned identity_;
  std::filesystem::path ca_file_;
  std::unique_ptr<TlsEchoServer> server_;
  IoPool pool_{1};
};

TEST_F(Wss, RefusesSelfSignedWithSystemStore) {
  auto events = connect("localhost", {});
  ASSERT_TRUE(events->wait_closed());
  EXPECT_FALSE(events->opened);
  EXPECT_NE(events->close_message().find("certificate verify failed"), std::string::npos)
      << events->close_message();
  EXPECT_NE(events->close_message().find("self-signed certificate"), std::string::npos)
      << events->close_message();
}

TEST_F(Wss, AcceptsWithItsCertificateAsCa) {
  ClientOptions options;
  options.ca_file = ca_file_.string();
  std::shared_ptr<WebSocketClient> client;
  auto events = connect("localhost", options, &client);
  ASSERT_TRUE(events->opened) << events->close_message();
  for (int i = 0; i < 50; ++i)
    ASSERT_TRUE(client->send("secret " + std::to_string(i)));
  ASSERT_TRUE(events->wait_messages(50));
  {
    std::lock_guard lock(events->mu);
    EXPECT_EQ(events->messages.front(), "secret 0");
    EXPECT_EQ(events->messages.back(), "secret 49");
  }
  client->close();
  ASSERT_TRUE(events->wait_closed());
  EXPECT_EQ(events->close_message(), "closed by client");
}

TEST_F(Wss, RefusesNameMismatchEvenWithTrustedCa) {
  ClientOptions options;
  options.ca_file = ca_file_.string();
  auto events = connect("127.0.0.1", options);  // the certificate names only "localhost"
  ASSERT_TRUE(events->wait_closed());
  EXPECT_FALSE(events->opened);
  EXPECT_NE(events->close_message().find("IP address mismatch"), std::string::npos)
      << events->close_message();
}

}  // namespace
}  // namespace infernet::net
