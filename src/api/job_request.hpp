// POST /api/v1/jobs in both of its shapes (docs/api.md): the flat fields, and the consumer guide's nested
// {model, input: {prompt | messages, files?}, parameters: {...}, resources: {gpu_type, min_gpu_memory_mb,
// priority}, budget: {max_cost_sats | max_cost_msat}}, which may be mixed as long as no setting is given
// twice.
//
// Thread-safe: pure functions (attach_files reads the blob store, which is thread-safe).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "api/blob_store.hpp"
#include "consumer/consumer.hpp"
#include "core/result.hpp"

namespace infernet::api {

// Most blobs one job may name in input.files.
constexpr size_t kMaxInputFiles = 8;

struct JobRequest {
  consumer::JobSpec spec;
  std::vector<std::string> files;     // input.files: blob hashes (lower-case hex), in order
  std::vector<std::string> warnings;  // "input.<key>: ignored: model <model> takes no such parameter"
};

// Parses the body. Checks shape and types only (value ranges are the consumer's). Errors (kInvalidInput, the
// message starting with the field's path): those of parse_job_spec for flat fields, the same with the
// section's prefix for nested ones ("parameters.temperature: must be a number"); "<section>.<key>: unknown
// field" in parameters, resources and budget; "<path>: also given as <path>; give it once" for a setting
// given twice (flat and nested, or max_cost_sats and max_cost_msat); "budget.max_cost_sats: ..." when it
// overflows in millisatoshis; "input.files[i]: ..." for an entry that is not a SHA-256. Keys of `input` that
// a text model takes no parameter for (an image model's negative_prompt, num_inference_steps, ...) are not
// errors: each becomes a warning, also set as one of spec.notes so the job's events record it.
Result<JobRequest> parse_job_request(std::string_view body);

// Resolves request.files against the store and attaches each blob's text to the job: to a raw prompt as
// "\n\nFile <sha256>:\n<text>" (no leading blank line when the prompt is empty), to a conversation as one
// more user message "File <sha256>:\n<text>". Errors (kInvalidInput naming "input.files[i]"): an unknown
// hash, a blob that is not UTF-8 text, the prompt growing past the prompt limit; also when `store` is null
// (no blob store configured). Does nothing for a request without files.
Status attach_files(JobRequest& request, const BlobStore* store);

}  // namespace infernet::api
