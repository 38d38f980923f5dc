// Streamed response bodies (HttpResponse::stream): chunked framing, keep-alive after the body, HTTP/1.0,
// and the writer learning that the peer left.
#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http.hpp>

#include "net/server.hpp"

namespace infernet::net {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

// What the streaming handler saw, for the test thread.
struct StreamProbe {
  std::promise<std::shared_ptr<HttpBodyWriter>> writer;
  std::promise<void> ended;
};

// GET /stream answers a streamed text/event-stream body that the test writes; any other path "plain".
ServerHandlers stream_handlers(const std::shared_ptr<StreamProbe>& probe) {
  ServerHandlers handlers;
  handlers.http = [probe](const HttpRequest& request) {
    HttpResponse response;
    if (request.path() != "/stream") {
      response.body = "plain";
      return response;
    }
    response.content_type = "text/event-stream";
    response.stream = [probe](std::shared_ptr<HttpBodyWriter> writer) {
      writer->on_end([probe] { probe->ended.set_value(); });
      probe->writer.set_value(std::move(writer));
    };
    return response;
  };
  return handlers;
}

class Client {
 public:
  explicit Client(uint16_t port) : socket_(io_) {
    socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  }
  void send(const std::string& target, unsigned version = 11) {
    http::request<http::empty_body> request{http::verb::get, target, version};
    request.set(http::field::host, "127.0.0.1");
    request.keep_alive(version == 11);
    http::write(socket_, request);
  }
  // The raw bytes, framing included: the status line and headers, then the body exactly as sent.
  std::string read_header_block() {
    asio::read_until(socket_, asio::dynamic_buffer(data_), "\r\n\r\n");
    auto end = data_.find("\r\n\r\n") + 4;
    std::string head = data_.substr(0, end);
    data_.erase(0, end);
    return head;
  }
  std::string read_exactly(size_t n) {
    if (data_.size() < n)
      asio::read(socket_, asio::dynamic_buffer(data_), asio::transfer_exactly(n - data_.size()));
    std::string out = data_.substr(0, n);
    data_.erase(0, n);
    return out;
  }
  std::string read_to_eof() {
    boost::system::error_code ec;
    asio::read(socket_, asio::dynamic_buffer(data_), ec);
    return std::exchange(data_, "");
  }
  void close() { socket_.close(); }

 private:
  asio::io_context io_;
  tcp::socket socket_;
  std::string data_;  // read and not yet consumed
};

TEST(ServerStream, ChunksArriveAsWrittenThenTheConnectionServesTheNextRequest) {
  auto probe = std::make_shared<StreamProbe>();
  auto writer_future = probe->writer.get_future();
  Server server({}, stream_handlers(probe));
  ASSERT_TRUE(server.start());
  Client client(server.port());
  client.send("/stream");
  auto writer = writer_future.get();
  ASSERT_TRUE(writer->write("data: one\n\n"));  // the status and headers go with the first piece
  std::string head = client.read_header_block();
  EXPECT_NE(head.find("HTTP/1.1 200"), std::string::npos) << head;
  EXPECT_NE(head.find("Transfer-Encoding: chunked"), std::string::npos) << head;
  EXPECT_NE(head.find("Content-Type: text/event-stream"), std::string::npos) << head;
  EXPECT_EQ(head.find("Content-Length"), std::string::npos) << head;
  EXPECT_FALSE(writer->respond(HttpResponse{})) << "the streamed status is already on the wire";
  // The first piece arrives before the second is written: nothing is held back.
  EXPECT_EQ(client.read_exactly(16), "b\r\ndata: one\n\n\r\n");
  // Any thread may write; an empty write is a no-op, not the end of the body.
  std::thread([&] { EXPECT_TRUE(writer->write("")); }).join();
  std::thread([&] { EXPECT_TRUE(writer->write("data: two\n\n")); }).join();
  EXPECT_EQ(client.read_exactly(16), "b\r\ndata: two\n\n\r\n");
  writer->finish();
  EXPECT_EQ(client.read_exactly(5), "0\r\n\r\n");
  EXPECT_FALSE(writer->write("late")) << "a finished body takes no more bytes";
  EXPECT_EQ(probe->ended.get_future().wait_for(5s), std::future_status::ready);

  client.send("/plain");  // keep-alive: the same connection answers the next request
  std::string next = client.read_header_block();
  EXPECT_NE(next.find("Content-Length: 5"), std::string::npos) << next;
  EXPECT_EQ(client.read_exactly(5), "plain");
}

TEST(ServerStream, PeerLeavingEndsTheBodyWithoutAWrite) {
  auto probe = std::make_shared<StreamProbe>();
  auto writer_future = probe->writer.get_future();
  auto ended = probe->ended.get_future();
  Server server({}, stream_handlers(probe));
  ASSERT_TRUE(server.start());
  {
    Client client(server.port());
    client.send("/stream");
    auto writer = writer_future.get();
    ASSERT_TRUE(writer->write("data: x\n\n"));
    client.read_header_block();
    client.close();
    EXPECT_EQ(ended.wait_for(5s), std::future_status::ready) << "on_end must run when the peer leaves";
    EXPECT_FALSE(writer->write("data: y\n\n"));
  }
  server.stop();
}

TEST(ServerStream, Http10GetsRawBytesUntilClose) {
  auto probe = std::make_shared<StreamProbe>();
  auto writer_future = probe->writer.get_future();
  Server server({}, stream_handlers(probe));
  ASSERT_TRUE(server.start());
  Client client(server.port());
  client.send("/stream", 10);
  auto writer = writer_future.get();
  writer->write("abc");
  std::string head = client.read_header_block();
  EXPECT_EQ(head.find("chunked"), std::string::npos) << head;
  writer->write("def");
  writer->finish();
  EXPECT_EQ(client.read_to_eof(), "abcdef");
}

TEST(ServerStream, RespondSendsACompleteResponseLaterAndKeepsTheConnection) {
  auto probe = std::make_shared<StreamProbe>();
  auto writer_future = probe->writer.get_future();
  auto ended = probe->ended.get_future();
  Server server({}, stream_handlers(probe));
  ASSERT_TRUE(server.start());
  Client client(server.port());
  client.send("/stream");
  auto writer = writer_future.get();
  HttpResponse late = json_response(404, R"({"error":"gone"})");
  late.headers.emplace_back("X-Late", "yes");
  std::thread([&] { EXPECT_TRUE(writer->respond(late)); }).join();
  EXPECT_FALSE(writer->respond(late)) << "one response per request";
  EXPECT_FALSE(writer->write("more")) << "nothing follows a complete response";
  std::string head = client.read_header_block();
  EXPECT_NE(head.find("HTTP/1.1 404"), std::string::npos) << head;
  EXPECT_NE(head.find("Content-Length: 16"), std::string::npos) << head;
  EXPECT_NE(head.find("X-Late: yes"), std::string::npos) << head;
  EXPECT_EQ(head.find("chunked"), std::string::npos) << head;
  EXPECT_EQ(client.read_exactly(16), R"({"error":"gone"})");
  EXPECT_EQ(ended.wait_for(5s), std::future_status::ready);
  client.send("/plain");
  EXPECT_NE(client.read_header_block().find("200"), std::string::npos);
  EXPECT_EQ(client.read_exactly(5), "plain");
}

TEST(ServerStream, SlowReaderIsCutOffAndServerStopEndsBodies) {
  ServerOptions options;
  options.max_outbound_bytes = 64 * 1024;
  auto probe = std::make_shared<StreamProbe>();
  auto writer_future = probe->writer.get_future();
  auto ended = probe->ended.get_future();
  Server server(options, stream_handlers(probe));
  ASSERT_TRUE(server.start());
  Client client(server.port());
  client.send("/stream");
  auto writer = writer_future.get();
  // The client never reads: the socket buffers fill, then the queue passes the limit.
  bool refused = false;
  for (int i = 0; i < 10000 && !refused; ++i)
    refused = !writer->write(std::string(16 * 1024, 'x'));
  EXPECT_TRUE(refused) << "a peer that does not read must not grow the queue without bound";
  EXPECT_EQ(ended.wait_for(5s), std::future_status::ready);
  server.stop();
}

TEST(ServerStream, StopEndsAnOpenBody) {
  auto probe = std::make_shared<StreamProbe>();
  auto writer_future = probe->writer.get_future();
  auto ended = probe->ended.get_future();
  Server server({}, stream_handlers(probe));
  ASSERT_TRUE(server.start());
  Client client(server.port());
  client.send("/stream");
  auto writer = writer_future.get();
  server.stop();
  EXPECT_EQ(ended.wait_for(5s), std::future_status::ready);
  EXPECT_FALSE(writer->write("after stop"));
}

}  // namespace
}  // namespace infernet::net
