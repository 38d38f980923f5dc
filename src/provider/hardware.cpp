// Hardware detection for the announcement: what a consumer matches against (GPU type and memory, cores).
// Every source is optional; what cannot be read is left empty or zero rather than failing the node.
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

#include <spdlog/spdlog.h>

#include "provider/provider.hpp"

namespace infernet::provider {
namespace {

constexpr size_t kMaxGpus = 64;
constexpr size_t kMaxNameBytes = 128;
constexpr size_t kMaxSmiOutputBytes = 64 * 1024;

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())) != 0)
    s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())) != 0)
    s.remove_suffix(1);
  return s;
}

bool parse_uint(std::string_view s, uint64_t& out) {
  if (s.empty() || s.size() > 18) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  out = v;
  return true;
}

// The value after "<key> :" on the first line of `path` that starts with `key`.
std::string proc_value(const char* path, std::string_view key) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.starts_with(key)) continue;
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    return std::string(trim(std::string_view(line).substr(colon + 1)));
  }
  return "";
}

bool on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return false;
  std::string_view dirs(path);
  while (!dirs.empty()) {
    auto colon = dirs.find(':');
    std::string candidate(dirs.substr(0, colon));
    dirs = colon == std::string_view::npos ? std::string_view() : dirs.substr(colon + 1);
    if (candidate.empty()) continue;
    candidate += '/';
    candidate += program;
    if (::access(candidate.c_str(), X_OK) == 0) return true;
  }
  return false;
}

std::vector<protocol::GpuInfo> query_nvidia_smi() {
  if (!on_path("nvidia-smi")) return {};
  FILE* pipe =
      ::popen("nvidia-smi --query-gpu=name,memory.total --format=csv,noheader,nounits 2>/dev/null", "r");
  if (pipe == nullptr) return {};
  std::string out;
  char buffer[4096];
  size_t n = 0;
  // Reads to the end even past the limit, so the child never blocks on a full pipe and pclose returns.
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) {
    if (out.size() < kMaxSmiOutputBytes) out.append(buffer, n);
  }
  const int status = ::pclose(pipe);
  if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    spdlog::debug("provider: nvidia-smi failed (status {}); announcing no GPUs", status);
    return {};
  }
  return parse_nvidia_smi_gpus(out);
}

}  // namespace

std::vector<protocol::GpuInfo> parse_nvidia_smi_gpus(std::string_view csv) {
  std::vector<protocol::GpuInfo> gpus;
  while (!csv.empty() && gpus.size() < kMaxGpus) {
    auto eol = csv.find('\n');
    std::string_view line = csv.substr(0, eol);
    csv = eol == std::string_view::npos ? std::string_view() : csv.substr(eol + 1);
    // The name may itself contain commas; the memory is the last field.
    auto comma = line.rfind(',');
    if (comma == std::string_view::npos) continue;
    std::string_view name = trim(line.substr(0, comma));
    uint64_t memory_mb = 0;
    if (name.empty() || name.size() > kMaxNameBytes || !parse_uint(trim(line.substr(comma + 1)), memory_mb)) {
      continue;
    }
    gpus.push_back(protocol::GpuInfo{std::string(name), memory_mb});
  }
  return gpus;
}

protocol::Hardware detect_hardware() {
  protocol::Hardware hw;
  hw.cpu_model = proc_value("/proc/cpuinfo", "model name");
  if (hw.cpu_model.size() > kMaxNameBytes) hw.cpu_model.resize(kMaxNameBytes);
  hw.cpu_cores = std::thread::hardware_concurrency();
  // "MemTotal:       16318252 kB"
  std::string mem = proc_value("/proc/meminfo", "MemTotal");
  uint64_t kib = 0;
  if (auto space = mem.find(' '); parse_uint(trim(std::string_view(mem).substr(0, space)), kib)) {
    hw.memory_mb = kib / 1024;
  }
  hw.gpus = query_nvidia_smi();
  return hw;
}

}  // namespace infernet::provider
