// The job database's migration steps (store::migrate), kept apart from the code that reads and writes it.
#pragma once

#include <span>
#include <string_view>

namespace infernet::consumer::internal {

std::span<const std::string_view> job_store_schema();

}  // namespace infernet::consumer::internal
