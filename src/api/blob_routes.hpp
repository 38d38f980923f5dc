// The blob routes of the consumer node's API (docs/api.md "Blobs"), Blossom-style (BUD-01/02):
// PUT /upload, GET and HEAD /<sha256>[.ext], DELETE /<sha256>[.ext].
//
// Thread-safe: the routes hold no state; the BlobStore is thread-safe.
#pragma once

#include <optional>

#include "api/blob_store.hpp"
#include "net/http.hpp"

namespace infernet::api {

// The answer to a blob request, or nullopt when the path is not a blob path (the caller routes it on).
// Upload answers 200 with the descriptor {url, sha256, size, type, uploaded} (the same for a blob stored
// before); the url is http://<Host>/<sha256>. An X-SHA-256 header, when sent, must match the body's hash.
// Errors are the API's JSON errors, with the message also in an X-Reason header as Blossom clients expect.
std::optional<net::HttpResponse> route_blob_request(BlobStore& store, const net::HttpRequest& request);

}  // namespace infernet::api
