// Conversions between Boost.JSON values and events, for code that has already parsed a larger document (a
// relay message) and must not parse it twice. Kept out of event.hpp so that most includers skip Boost.JSON.
#pragma once

#include <boost/json/value.hpp>

#include "nostr/event.hpp"

namespace infernet::nostr {

Result<Event> event_from_value(const boost::json::value& v, const EventLimits& limits);
// Same checks and errors as parse_event / parse_event_draft.
Result<EventDraft> draft_from_value(const boost::json::value& v, const EventLimits& limits);
Result<Tags> tags_from_value(const boost::json::value& v, const EventLimits& limits);

}  // namespace infernet::nostr
