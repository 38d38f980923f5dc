// The market's questions over REST (docs/api.md, "Estimates" and "Why"): POST /api/v1/estimate (the body of
// POST /api/v1/jobs; nothing is stored or sent) and GET /api/v1/jobs/{id}/why.
#pragma once

#include <string>

#include "api/routes.hpp"
#include "consumer/consumer.hpp"
#include "net/http.hpp"

namespace infernet::api {

// POST /api/v1/estimate. 200 with the estimate; 400 naming the bad field; 413 for a body over the limit.
net::HttpResponse estimate_job(consumer::ConsumerNode& consumer, const RouteOptions& options,
                               const net::HttpRequest& request);
// GET /api/v1/jobs/{id}/why for a checked id. 200 with the report; 404 for an unknown job.
net::HttpResponse why_job(consumer::ConsumerNode& consumer, const std::string& id);

}  // namespace infernet::api
