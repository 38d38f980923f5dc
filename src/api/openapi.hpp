// The OpenAPI 3.1 description of every route the API serves (GET /api/v1/openapi.json). The document is
// hand-written in src/api/openapi.json and compiled in at build time; openapi_test.cpp checks it against
// the routes, so a route added without documenting it fails the tests.
//
// Thread-safe: a constant.
#pragma once

#include <string_view>

namespace infernet::api {

// The document, as JSON text. Lives as long as the program.
std::string_view openapi_document();

}  // namespace infernet::api
