#include "ingest/rpc_client.h"

#include <curl/curl.h>

#include <cctype>
#include <mutex>
#include <unordered_map>

#include "ingest/rpc_error.h"
#include "ingest/rpc_response.h"
#include "ingest/simdjson_binding.h"
#include "simdjson.h"

namespace sluice::ingest {

using arrow::Status;

namespace {

// How often a request in progress checks the stop token.
constexpr int kStopPollMs = 20;

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

size_t WriteBody(char* ptr, size_t size, size_t n, void* userdata) {
  static_cast<std::string*>(userdata)->append(ptr, size * n);
  return size * n;
}

// Keeps the Retry-After header of the response (the last one seen).
size_t ReadHeader(char* buffer, size_t size, size_t n, void* userdata) {
  std::string_view line(buffer, size * n);
  constexpr std::string_view kName = "retry-after:";
  if (line.size() > kName.size()) {
    bool match = true;
    for (size_t i = 0; i < kName.size() && match; ++i) {
      match = std::tolower(static_cast<unsigned char>(line[i])) == kName[i];
    }
    if (match) *static_cast<std::string*>(userdata) = std::string(line.substr(kName.size()));
  }
  return size * n;
}

std::shared_ptr<RpcErrorDetail> Detail(RpcErrorKind kind, int http_status = 0) {
  auto d = std::make_shared<RpcErrorDetail>(kind);
  d->http_status = http_status;
  return d;
}

std::string_view Quote(std::string_view text) { return QuoteForMessage(text); }
std::string_view TrimRight(std::string_view s) { return TrimJsonWhitespace(s); }

}  // namespace

RpcClient::RpcClient(RpcClientOptions options)
    : options_(std::move(options)), parser_(std::make_unique<RpcResponseParser>()) {}

RpcClient::~RpcClient() {
  if (multi_ && easy_) curl_multi_remove_handle(static_cast<CURLM*>(multi_), easy_);
  if (easy_) curl_easy_cleanup(static_cast<CURL*>(easy_));
  if (multi_) curl_multi_cleanup(static_cast<CURLM*>(multi_));
  if (headers_) curl_slist_free_all(static_cast<curl_slist*>(headers_));
}

arrow::Result<std::unique_ptr<RpcClient>> RpcClient::Make(RpcClientOptions options) {
  if (options.url.empty()) return Status::Invalid("RpcClient: empty rpc url");
  ARROW_RETURN_NOT_OK(internal::CheckSimdjsonBinding());
  std::unique_ptr<RpcClient> client(new RpcClient(std::move(options)));
  ARROW_RETURN_NOT_OK(client->Init());
  return client;
}

Status RpcClient::Init() {
  GlobalInit();
  CURL* easy = curl_easy_init();
  CURLM* multi = curl_multi_init();
  easy_ = easy;
  multi_ = multi;
  if (!easy || !multi) return Status::IOError("RpcClient: curl initialisation failed");
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Content-Type: application/json");
  // No "Expect: 100-continue" round trip for large batch bodies.
  headers = curl_slist_append(headers, "Expect:");
  headers_ = headers;
  curl_easy_setopt(easy, CURLOPT_URL, options_.url.c_str());
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(easy, CURLOPT_POST, 1L);
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options_.connect_timeout.count()));
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.request_timeout.count()));
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &WriteBody);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, &response_);
  curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &ReadHeader);
  curl_easy_setopt(easy, CURLOPT_HEADERDATA, &retry_after_);
  redacted_url_ = RedactUrl(options_.url);
  return Status::OK();
}

Status RpcClient::Post(std::string_view what) {
  if (options_.stop_token.IsStopRequested()) return Status::Cancelled(what, ": stopped");
  CURL* easy = static_cast<CURL*>(easy_);
  CURLM* multi = static_cast<CURLM*>(multi_);
  response_.clear();
  retry_after_.clear();
  char errbuf[CURL_ERROR_SIZE];
  errbuf[0] = 0;
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body_.data());
  curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body_.size()));
  if (CURLMcode mc = curl_multi_add_handle(multi, easy)) {
    return Status::IOError(what, ": curl_multi_add_handle: ", curl_multi_strerror(mc));
  }
  CURLcode result = CURLE_OK;
  bool done = false;
  bool cancelled = false;
  while (!done) {
    int running = 0;
    if (CURLMcode mc = curl_multi_perform(multi, &running)) {
      curl_multi_remove_handle(multi, easy);
      return Status::IOError(what, ": curl_multi_perform: ", curl_multi_strerror(mc));
    }
    int queued = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &queued)) {
      if (msg->msg == CURLMSG_DONE && msg->easy_handle == easy) {
        result = msg->data.result;
        done = true;
      }
    }
    if (done) break;
    if (options_.stop_token.IsStopRequested()) {
      cancelled = true;
      break;
    }
    curl_multi_poll(multi, nullptr, 0, kStopPollMs, nullptr);
  }
  curl_multi_remove_handle(multi, easy);
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, nullptr);
  if (cancelled) return Status::Cancelled(what, ": stopped");
  if (result != CURLE_OK) {
    return WithRpcError(Status::IOError(what, ": ", redacted_url_, ": ",
                                        errbuf[0] ? errbuf : curl_easy_strerror(result)),
                        Detail(RpcErrorKind::kTransport));
  }
  long http = 0;
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &http);
  if (http != 200) {
    auto detail = Detail(http == 429   ? RpcErrorKind::kRateLimited
                         : http == 413 ? RpcErrorKind::kBatchTooLarge
                                       : RpcErrorKind::kHttp,
                         static_cast<int>(http));
    detail->retry_after = ParseRetryAfter(retry_after_);
    return WithRpcError(Status::IOError(what, ": ", redacted_url_, ": HTTP ", http, ": ",
                                        Quote(TrimRight(response_))),
                        std::move(detail));
  }
  response_.reserve(response_.size() + simdjson::SIMDJSON_PADDING);
  return Status::OK();
}

arrow::Result<std::string> RpcClient::Call(std::string_view method, std::string_view params_json) {
  const std::string what = DescribeCall(method, params_json);
  const uint64_t id = next_id_++;
  body_.clear();
  body_ += R"({"jsonrpc":"2.0","id":)";
  body_ += std::to_string(id);
  body_ += R"(,"method":")";
  body_ += method;
  body_ += R"(","params":)";
  body_ += params_json.empty() ? std::string_view("[]") : params_json;
  body_ += '}';
  ARROW_RETURN_NOT_OK(Post(what));

  return parser_->ParseCall(what, id, &response_);
}

arrow::Result<std::vector<std::string>> RpcClient::CallBatch(
    const std::vector<RpcRequest>& requests) {
  if (requests.empty()) return std::vector<std::string>{};
  const uint64_t first_id = next_id_;
  next_id_ += requests.size();
  body_.clear();
  body_ += '[';
  for (size_t i = 0; i < requests.size(); ++i) {
    if (i) body_ += ',';
    body_ += R"({"jsonrpc":"2.0","id":)";
    body_ += std::to_string(first_id + i);
    body_ += R"(,"method":")";
    body_ += requests[i].method;
    body_ += R"(","params":)";
    body_ += requests[i].params.empty() ? std::string_view("[]") : requests[i].params;
    body_ += '}';
  }
  body_ += ']';
  const std::string what =
      "batch of " + std::to_string(requests.size()) + " calls from " +
      DescribeCall(requests.front().method, requests.front().params);
  ARROW_RETURN_NOT_OK(Post(what));

  return parser_->ParseBatch(what, requests, first_id, &response_);
}

bool IsNullResult(std::string_view raw) { return TrimRight(raw) == "null"; }

arrow::Result<std::string_view> UnquoteResult(std::string_view raw) {
  raw = TrimRight(raw);
  if (raw.size() < 2 || raw.front() != '"' || raw.back() != '"') {
    return Status::Invalid("expected a JSON string, got ", Quote(raw));
  }
  std::string_view inner = raw.substr(1, raw.size() - 2);
  if (inner.find('\\') != std::string_view::npos) {
    return Status::Invalid("unexpected escape in JSON string ", Quote(raw));
  }
  return inner;
}

}  // namespace sluice::ingest
