#include "api/api.hpp"

#include <algorithm>
#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "api/api_error.hpp"
#include "api/job_stream.hpp"
#include "api/notification_api.hpp"
#include "api/openai.hpp"
#include "api/routes.hpp"
#include "net/io_pool.hpp"
#include "net/listen_address.hpp"

namespace infernet::api {
namespace {

// The worker behind Defer. Job streams hold it only weakly, so it is always destroyed with the handlers (on
// the thread destroying the Server), never on its own thread.
struct StreamFinisher {
  StreamFinisher() { pool.start(); }
  net::IoPool pool{1};
};

}  // namespace

net::ServerHandlers make_handlers(consumer::ConsumerNode& consumer, ApiOptions options) {
  RouteOptions routes;
  routes.max_body_bytes = options.max_body_bytes;
  routes.now_ms = std::move(options.now_ms);
  if (!options.blob_dir.empty())
    routes.blobs = std::make_shared<BlobStore>(BlobStoreOptions{options.blob_dir});
  routes.webhooks = options.webhooks;
  auto finisher = std::make_shared<StreamFinisher>();
  Defer defer = [weak = std::weak_ptr<StreamFinisher>(finisher)](std::function<void()> work) {
    if (auto f = weak.lock()) boost::asio::post(f->pool.io_context(), std::move(work));
  };
  net::ServerHandlers handlers;
  handlers.http = [&consumer, routes, defer](const net::HttpRequest& request) {
    if (auto answer = route_openai(consumer, defer, nullptr, request)) return std::move(*answer);
    return route_request(consumer, routes, request);
  };
  handlers.websocket = [&consumer, finisher, defer = std::move(defer)](
                           std::shared_ptr<net::WebSocketConnection> connection,
                           const net::HttpRequest& request) -> std::unique_ptr<net::WebSocketHandler> {
    if (auto all = match_notification_stream(request)) {
      if (!*all) return refuse_stream(*connection, kCloseInvalidInput, all->error().message);
      return open_notification_stream(consumer, std::move(connection), **all);
    }
    auto stream = match_stream(request);
    if (!stream) return nullptr;
    if (!*stream) return refuse_stream(*connection, kCloseInvalidInput, stream->error().message);
    return open_job_stream(consumer, defer, std::move(connection), (*stream)->job_id, (*stream)->after);
  };
  // Checked before any route, so a refused request changes nothing whatever paths are added above.
  return guard_handlers(std::move(handlers), std::move(options.access));
}

Result<net::ServerOptions> parse_listen_address(std::string_view listen) {
  return net::parse_listen_address("api.listen", listen);
}

ApiServer::ApiServer(consumer::ConsumerNode& consumer, ApiServerOptions options)
    : consumer_(consumer), options_(std::move(options)) {}

ApiServer::~ApiServer() {
  stop();
}

Status ApiServer::start() {
  if (!server_) {
    auto server_options = parse_listen_address(options_.listen);
    if (!server_options) return tl::unexpected(server_options.error());
    server_options->threads = options_.threads;
    // Uploads may be larger than job bodies; the job route checks its own limit.
    server_options->max_http_body_bytes =
        options_.api.blob_dir.empty()
            ? options_.api.max_body_bytes
            : std::max<size_t>(options_.api.max_body_bytes, BlobStoreOptions{}.max_blob_bytes);
    host_ = server_options->host;
    server_ = std::make_unique<net::Server>(*server_options, make_handlers(consumer_, options_.api));
  }
  return server_->start();
}

void ApiServer::stop() {
  if (server_) server_->stop();
}

uint16_t ApiServer::port() const {
  return server_ ? server_->port() : 0;
}

std::string ApiServer::url() const {
  uint16_t bound = port();
  if (bound == 0) return "";
  // A wildcard address is reached through loopback.
  std::string host = host_ == "0.0.0.0" ? "127.0.0.1" : host_ == "::" ? "::1" : host_;
  return "http://" + net::url_host(host) + ":" + std::to_string(bound);
}

}  // namespace infernet::api
