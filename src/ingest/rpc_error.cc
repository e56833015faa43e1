#include "ingest/rpc_error.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <ctime>

namespace sluice::ingest {

const char* RpcErrorKindName(RpcErrorKind kind) {
  switch (kind) {
    case RpcErrorKind::kTransport:
      return "transport";
    case RpcErrorKind::kHttp:
      return "http";
    case RpcErrorKind::kRpc:
      return "rpc";
    case RpcErrorKind::kMalformed:
      return "malformed";
    case RpcErrorKind::kRateLimited:
      return "rate_limited";
    case RpcErrorKind::kBatchTooLarge:
      return "batch_too_large";
    case RpcErrorKind::kMethodNotFound:
      return "method_not_found";
  }
  return "rpc";
}

const RpcErrorDetail* RpcErrorOf(const arrow::Status& st) {
  if (st.ok() || !st.detail()) return nullptr;
  if (std::string_view(st.detail()->type_id()) != RpcErrorDetail::kTypeId) return nullptr;
  return static_cast<const RpcErrorDetail*>(st.detail().get());
}

arrow::Status WithRpcError(arrow::Status st, std::shared_ptr<RpcErrorDetail> detail) {
  if (st.ok()) return st;
  return st.WithDetail(std::move(detail));
}

namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool Has(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace

RpcErrorKind ClassifyRpcError(int64_t code, std::string_view message) {
  const std::string m = Lower(message);
  // Batch size first: "too many requests in batch" is about size, not rate.
  if (Has(m, "batch") && (Has(m, "too large") || Has(m, "too many") || Has(m, "exceed") ||
                          Has(m, "size") || Has(m, "limit"))) {
    return RpcErrorKind::kBatchTooLarge;
  }
  if (code == -32003 || Has(m, "response too large") || Has(m, "response size")) {
    return RpcErrorKind::kBatchTooLarge;
  }
  if (code == 429 || code == -32005 || code == -32007 || Has(m, "rate limit") ||
      Has(m, "too many requests") || Has(m, "request limit") ||
      (Has(m, "exceeded") && (Has(m, "capacity") || Has(m, "per second") || Has(m, "quota")))) {
    return RpcErrorKind::kRateLimited;
  }
  if (code == -32601 ||
      (Has(m, "method") && (Has(m, "not found") || Has(m, "does not exist") ||
                            Has(m, "not supported") || Has(m, "unsupported") ||
                            Has(m, "not available")))) {
    return RpcErrorKind::kMethodNotFound;
  }
  return RpcErrorKind::kRpc;
}

std::optional<std::chrono::milliseconds> ParseRetryAfter(std::string_view value) {
  while (!value.empty() && std::isspace(static_cast<unsigned char>(value.front()))) {
    value.remove_prefix(1);
  }
  while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back()))) {
    value.remove_suffix(1);
  }
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(),
                  [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
    int64_t secs = 0;
    auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), secs);
    if (ec != std::errc() || secs > 365LL * 24 * 3600) return std::nullopt;
    return std::chrono::milliseconds(secs * 1000);
  }
  // An HTTP-date, e.g. "Wed, 21 Oct 2015 07:28:00 GMT" (curl parses the RFC forms).
  std::string text(value);
  time_t when = curl_getdate(text.c_str(), nullptr);
  if (when < 0) return std::nullopt;
  time_t now = std::time(nullptr);
  return std::chrono::milliseconds(when > now ? (when - now) * 1000LL : 0);
}

std::string RedactUrl(std::string_view url) {
  auto scheme = url.find("://");
  size_t host_start = scheme == std::string_view::npos ? 0 : scheme + 3;
  size_t host_end = url.find_first_of("/?#", host_start);
  std::string_view authority = url.substr(host_start, host_end == std::string_view::npos
                                                          ? std::string_view::npos
                                                          : host_end - host_start);
  // user:password@host
  if (auto at = authority.rfind('@'); at != std::string_view::npos) {
    authority.remove_prefix(at + 1);
  }
  std::string out(url.substr(0, host_start));
  out += authority;
  if (host_end != std::string_view::npos && host_end + 1 < url.size()) out += "/…";
  return out;
}

}  // namespace sluice::ingest
