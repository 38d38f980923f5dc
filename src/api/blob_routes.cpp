#include "api/blob_routes.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "api/api_error.hpp"
#include "core/encoding.hpp"
#include "core/sha256.hpp"

namespace infernet::api {
namespace {

namespace json = boost::json;

constexpr std::string_view kUpload = "/upload";
constexpr size_t kMaxExtensionBytes = 16;

net::HttpResponse failure(const ApiError& error) {
  auto response = error_response(error);
  response.headers.emplace_back("X-Reason", error.message);
  return response;
}

net::HttpResponse failure(const Error& error) {
  return failure(to_api_error(error));
}

// Blossom clients read the reason from X-Reason (BUD-01).
net::HttpResponse blob_method_not_allowed(const net::HttpRequest& request, std::string_view allow) {
  auto response = method_not_allowed(request, allow);
  response.headers.emplace_back("X-Reason",
                                request.method + " is not allowed here; use " + std::string(allow));
  return response;
}

std::string blob_url(const net::HttpRequest& request, const std::string& sha256) {
  const std::string* host = request.header("host");
  return "http://" + (host != nullptr ? *host : std::string("127.0.0.1")) + "/" + sha256;
}

json::object descriptor_to_json(const net::HttpRequest& request, const BlobDescriptor& d) {
  return json::object{{"url", blob_url(request, d.sha256)},
                      {"sha256", d.sha256},
                      {"size", d.size},
                      {"type", d.type},
                      {"uploaded", d.uploaded}};
}

// "/<64 hex>" or "/<64 hex>.<ext>": the hash, else "".
std::string_view hash_of_path(std::string_view path) {
  if (path.size() < 65 || path[0] != '/') return {};
  std::string_view hash = path.substr(1, 64);
  std::string_view extension = path.substr(65);
  if (!BlobStore::is_hash(hash)) return {};
  if (!extension.empty()) {
    if (extension[0] != '.' || extension.size() > kMaxExtensionBytes + 1) return {};
    for (char c : extension.substr(1)) {
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) return {};
    }
  }
  return hash;
}

net::HttpResponse upload(BlobStore& store, const net::HttpRequest& request) {
  // A client that names the hash it means (BUD-02's X-SHA-256) is refused before anything is stored when the
  // body is not that blob.
  if (const std::string* claimed = request.header("x-sha-256")) {
    if (!BlobStore::is_hash(*claimed))
      return failure(Error{ErrorCode::kInvalidInput, "X-SHA-256: must be 64 hex digits"});
    const std::string actual = hex_encode(sha256(request.body));
    std::string lowered = *claimed;
    for (char& c : lowered)
      c = static_cast<char>(c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c);
    if (lowered != actual) {
      return failure(Error{ErrorCode::kInvalidInput,
                           "X-SHA-256: does not match the body (its sha256 is " + actual + ")"});
    }
  }
  const std::string* type = request.header("content-type");
  auto stored = store.put(request.body, type != nullptr ? std::string_view(*type) : std::string_view());
  if (!stored) return failure(stored.error());
  return net::json_response(200, json::serialize(descriptor_to_json(request, *stored)));
}

}  // namespace

std::optional<net::HttpResponse> route_blob_request(BlobStore& store, const net::HttpRequest& request) {
  std::string_view path = request.path();
  const std::string& method = request.method;
  if (path == kUpload) {
    if (method != "PUT") return blob_method_not_allowed(request, "PUT");
    return upload(store, request);
  }
  std::string_view hash = hash_of_path(path);
  if (hash.empty()) return std::nullopt;
  if (method == "GET" || method == "HEAD") {
    auto descriptor = store.stat(hash);
    if (!descriptor) return failure(descriptor.error());
    auto bytes = store.read(hash);
    if (!bytes) return failure(bytes.error());
    net::HttpResponse response;
    response.status = 200;
    response.content_type = descriptor->type;
    response.body = std::move(*bytes);
    return response;
  }
  if (method == "DELETE") {
    if (auto st = store.remove(hash); !st) return failure(st.error());
    return net::json_response(200, json::serialize(json::object{{"deleted", std::string(hash)}}));
  }
  return blob_method_not_allowed(request, "GET, HEAD, DELETE");
}

}  // namespace infernet::api
