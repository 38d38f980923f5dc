// The REST API's JSON shapes (docs/api.md) <-> the consumer's structs. JSON exists only here and in the
// routes; everything past this file is native types.
//
// Thread-safe: pure functions.
#pragma once

#include <string>
#include <string_view>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "consumer/consumer.hpp"
#include "core/result.hpp"

namespace infernet::api {

// Parses the body of POST /api/v1/jobs into a JobSpec. Checks shape and types only (value ranges are the
// consumer's): the body must be a JSON object; every member must be a known field of the right type; null
// counts as absent. Errors (kInvalidInput, the message starting with the field's name): "<field>: unknown
// field", "<field>: must be a string" (a non-negative integer, an integer, a number, true or false), and
// "request body: ..." for a body that is not a JSON object.
Result<consumer::JobSpec> parse_job_spec(std::string_view body);

// One top-level field of the flat POST /api/v1/jobs body (`name` as in docs/api.md) read into `spec`, with
// the same type checks and errors as parse_job_spec. Errors name `name`; "<name>: unknown field" for a name
// that is not a field.
Status read_job_field(std::string_view name, const boost::json::value& value, consumer::JobSpec& spec);
// True when `name` is a field of the flat body.
bool is_job_field(std::string_view name);

// The job JSON: {id, client_request_id, state, model, prompt, max_tokens, temperature, seed, max_cost_msat,
// priority, deadline, provider, requested_provider, open_quotes, gpu_type, min_gpu_memory_mb, attempt,
// output, error, usage: {input_tokens, output_tokens}, cost_msat, created_at, updated_at}. `provider` is the
// provider the job is or was assigned to, or the one asked for before assignment.
boost::json::object job_to_json(const consumer::JobRecord& job);

// {id, state, output, usage, cost_msat, error}: what GET /api/v1/jobs/{id}/result answers.
boost::json::object result_to_json(const consumer::JobRecord& job);

// {seq, job_id, type, data, at}; `data` is the event's JSON object (a string if the stored text is not JSON).
boost::json::object event_to_json(const consumer::JobEvent& event);

// The event's data as JSON: the parsed object, or the raw text as a JSON string when it does not parse.
boost::json::value event_data(const consumer::JobEvent& event);

// {pubkey, npub, name, alive, last_seen, expires_at, hardware, engines, models, prices, capacity}.
boost::json::object provider_to_json(const consumer::ProviderRecord& provider);

// Parts of an announcement: {cpu_model, cpu_cores, memory_mb, gpus: [{name, memory_mb}]}; {per_1k_input_msat,
// per_1k_output_msat, per_second_msat, per_job_msat, priority_percent}; {name, sha256, family, parameters,
// quantization, context_length, engine, capabilities}.
boost::json::object hardware_to_json(const protocol::Hardware& hardware);
boost::json::object prices_to_json(const protocol::Prices& prices);
boost::json::object model_info_to_json(const protocol::ModelInfo& model);

// The NIP-19 npub of a hex public key, "" when it is not one.
std::string npub_of(const std::string& hex_pubkey);

// {name, providers, min_price_per_1k_output_msat}.
boost::json::object model_to_json(const consumer::ModelSummary& model);

// Text for a JSON string: `text` itself when it is valid UTF-8, else with its high bytes replaced by '?'
// (Boost.JSON would copy invalid bytes through and make the document unparseable).
std::string json_safe(std::string_view text);

}  // namespace infernet::api
