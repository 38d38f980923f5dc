#include "api/job_request.hpp"

#include <array>
#include <limits>
#include <map>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "api/job_json.hpp"
#include "protocol/protocol.hpp"

namespace infernet::api {
namespace {

namespace json = boost::json;

constexpr std::array<std::string_view, 10> kParameterFields = {
    "max_tokens", "temperature",    "seed",          "top_k", "top_p",
    "min_p",      "repeat_penalty", "repeat_last_n", "stop",  "deterministic"};
constexpr uint64_t kMsatPerSat = 1000;
constexpr size_t kMaxIgnoredInputKeys = 16;  // each one is a warning and a note on the job
constexpr size_t kMaxKeyBytes = 64;

Error invalid(std::string message) {
  return Error{ErrorCode::kInvalidInput, std::move(message)};
}

bool plain_name(std::string_view name) {
  bool plain = !name.empty() && name.size() <= kMaxKeyBytes;
  for (char c : name) {
    plain = plain && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_');
  }
  return plain;
}

Error unknown_in(std::string_view section, std::string_view name) {
  if (!plain_name(name)) return invalid(std::string(section) + ": has an unknown field");
  return invalid(std::string(section) + "." + std::string(name) + ": unknown field");
}

// Parsing state: where each setting was given, so a second place is refused by name.
class RequestParser {
 public:
  Result<JobRequest> parse(const json::object& body) {
    for (const auto& member : body) {
      const std::string_view key = member.key();
      const json::value& value = member.value();
      Status st;
      if (key == "input" || key == "parameters" || key == "resources" || key == "budget") {
        if (value.is_null()) continue;
        const json::object* section = value.if_object();
        if (section == nullptr) return tl::unexpected(invalid(std::string(key) + ": must be an object"));
        if (key == "input") st = read_input(*section);
        if (key == "parameters") st = read_parameters(*section);
        if (key == "resources") st = read_resources(*section);
        if (key == "budget") st = read_budget(*section);
      } else if (!is_job_field(key)) {
        return tl::unexpected(unknown_field(key));
      } else if (!value.is_null()) {
        st = flat(key, value);
      }
      if (!st) return tl::unexpected(st.error());
    }
    for (const std::string& key : ignored_) {
      out_.warnings.push_back("input." + key + ": ignored: model " + out_.spec.model +
                              " takes no such parameter");
    }
    out_.spec.notes = out_.warnings;
    return std::move(out_);
  }

 private:
  static Error unknown_field(std::string_view name) {
    if (!plain_name(name)) return invalid("request body: has an unknown field");
    return invalid(std::string(name) + ": unknown field");
  }

  // Records that `setting` was given at `path`; an error naming both when it was given before.
  Status claim(const std::string& setting, const std::string& path) {
    auto [it, fresh] = given_.try_emplace(setting, path);
    if (!fresh) return tl::unexpected(invalid(path + ": also given as " + it->second + "; give it once"));
    return {};
  }

  Status flat(std::string_view key, const json::value& value) {
    if (auto st = claim(std::string(key), std::string(key)); !st) return st;
    return read_job_field(key, value, out_.spec);
  }

  // A flat field given inside `section`: the same reader, the error's field prefixed with the section.
  Status nested(std::string_view section, std::string_view key, const json::value& value) {
    const std::string path = std::string(section) + "." + std::string(key);
    if (auto st = claim(std::string(key), path); !st) return st;
    if (auto st = read_job_field(key, value, out_.spec); !st) {
      return tl::unexpected(invalid(std::string(section) + "." + st.error().message));
    }
    return {};
  }

  Status read_input(const json::object& input) {
    for (const auto& member : input) {
      const std::string_view key = member.key();
      if (member.value().is_null()) continue;
      if (key == "prompt" || key == "messages") {
        if (auto st = nested("input", key, member.value()); !st) return st;
      } else if (key == "files") {
        if (auto st = read_files(member.value()); !st) return st;
      } else {
        // An image model's settings (negative_prompt, num_inference_steps, ...) mean nothing to a text
        // model; the guide's example sends them, so they are reported rather than refused.
        if (!plain_name(key)) return tl::unexpected(invalid("input: has a key that is not a plain name"));
        if (ignored_.size() >= kMaxIgnoredInputKeys) {
          return tl::unexpected(invalid("input: at most " + std::to_string(kMaxIgnoredInputKeys) +
                                        " keys besides prompt, "
                                        "messages and files"));
        }
        ignored_.emplace_back(key);
      }
    }
    return {};
  }

  Status read_files(const json::value& value) {
    const json::array* files = value.if_array();
    if (files == nullptr) return tl::unexpected(invalid("input.files: must be a list of SHA-256 hashes"));
    if (files->size() > kMaxInputFiles) {
      return tl::unexpected(invalid("input.files: at most " + std::to_string(kMaxInputFiles)));
    }
    for (size_t i = 0; i < files->size(); ++i) {
      const json::value& item = (*files)[i];
      if (!item.is_string() || !BlobStore::is_hash(item.get_string())) {
        return tl::unexpected(invalid("input.files[" + std::to_string(i) +
                                      "]: must be a blob's SHA-256 (64 hex digits) from PUT /upload"));
      }
      std::string hash(item.get_string());
      for (char& c : hash)
        c = static_cast<char>(c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c);
      out_.files.push_back(std::move(hash));
    }
    return {};
  }

  Status read_parameters(const json::object& parameters) {
    for (const auto& member : parameters) {
      const std::string_view key = member.key();
      if (std::find(kParameterFields.begin(), kParameterFields.end(), key) == kParameterFields.end()) {
        return tl::unexpected(unknown_in("parameters", key));
      }
      if (member.value().is_null()) continue;
      if (auto st = nested("parameters", key, member.value()); !st) return st;
    }
    return {};
  }

  Status read_resources(const json::object& resources) {
    consumer::JobSpec& spec = out_.spec;
    for (const auto& member : resources) {
      const std::string_view key = member.key();
      const json::value& v = member.value();
      if (key != "gpu_type" && key != "min_gpu_memory_mb" && key != "priority") {
        return tl::unexpected(unknown_in("resources", key));
      }
      if (v.is_null()) continue;
      if (key == "priority") {
        if (auto st = nested("resources", key, v); !st) return st;
      } else if (key == "gpu_type") {
        if (!v.is_string()) return tl::unexpected(invalid("resources.gpu_type: must be a string"));
        spec.gpu_type = std::string(v.get_string());
      } else {
        if (v.is_uint64() || (v.is_int64() && v.get_int64() >= 0)) {
          spec.min_gpu_memory_mb = v.is_uint64() ? v.get_uint64() : static_cast<uint64_t>(v.get_int64());
        } else {
          return tl::unexpected(invalid("resources.min_gpu_memory_mb: must be a non-negative integer"));
        }
      }
    }
    return {};
  }

  Status read_budget(const json::object& budget) {
    for (const auto& member : budget) {
      const std::string_view key = member.key();
      const json::value& v = member.value();
      if (key != "max_cost_sats" && key != "max_cost_msat") return tl::unexpected(unknown_in("budget", key));
      if (v.is_null()) continue;
      if (key == "max_cost_msat") {
        if (auto st = nested("budget", key, v); !st) return st;
        continue;
      }
      if (auto st = claim("max_cost_msat", "budget.max_cost_sats"); !st) return st;
      uint64_t sats = 0;
      if (v.is_uint64()) {
        sats = v.get_uint64();
      } else if (v.is_int64() && v.get_int64() >= 0) {
        sats = static_cast<uint64_t>(v.get_int64());
      } else {
        return tl::unexpected(invalid("budget.max_cost_sats: must be a non-negative integer"));
      }
      if (sats > std::numeric_limits<uint64_t>::max() / kMsatPerSat) {
        return tl::unexpected(invalid("budget.max_cost_sats: too large"));
      }
      out_.spec.max_cost_msat = sats * kMsatPerSat;
    }
    return {};
  }

  JobRequest out_;
  std::map<std::string, std::string> given_;  // setting -> where it was given
  std::vector<std::string> ignored_;          // keys of input that were ignored
};

}  // namespace

Result<JobRequest> parse_job_request(std::string_view body) {
  boost::system::error_code ec;
  json::value doc = json::parse(body, ec);
  if (ec) return make_error(ErrorCode::kInvalidInput, "request body: not valid JSON (" + ec.message() + ")");
  if (!doc.is_object()) return make_error(ErrorCode::kInvalidInput, "request body: must be a JSON object");
  return RequestParser().parse(doc.get_object());
}

Status attach_files(JobRequest& request, const BlobStore* store) {
  consumer::JobSpec& spec = request.spec;
  size_t total = spec.prompt.size();
  for (const ChatMessage& m : spec.messages)
    total += m.content.size();
  for (size_t i = 0; i < request.files.size(); ++i) {
    const std::string field = "input.files[" + std::to_string(i) + "]";
    if (store == nullptr) return make_error(ErrorCode::kInvalidInput, field + ": this node keeps no blobs");
    const std::string& hash = request.files[i];
    auto text = store->read(hash);
    if (!text) {
      if (text.error().code == ErrorCode::kNotFound) {
        return make_error(ErrorCode::kInvalidInput,
                          field + ": no blob " + (hash + " (upload it with PUT /upload)"));
      }
      return tl::unexpected(text.error());
    }
    if (!is_text_blob(*text)) {
      return make_error(ErrorCode::kInvalidInput,
                        field + ": blob " + (hash + " is not UTF-8 text; a text model takes only text"));
    }
    std::string attachment = "File " + hash + ":\n" + *text;
    const bool as_message = !spec.messages.empty();
    const size_t added = attachment.size() + (as_message || spec.prompt.empty() ? 0 : 2);
    if (total + added > protocol::kMaxPromptBytes) {
      return make_error(ErrorCode::kInvalidInput, field + ": with this file the prompt exceeds " +
                                                      std::to_string(protocol::kMaxPromptBytes) + " bytes");
    }
    total += added;
    if (as_message) {
      spec.messages.push_back(ChatMessage{"user", std::move(attachment)});
    } else {
      if (!spec.prompt.empty()) spec.prompt += "\n\n";
      spec.prompt += attachment;
    }
  }
  return {};
}

}  // namespace infernet::api
