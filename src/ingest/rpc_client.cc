#include "ingest/rpc_client.h"

#include <curl/curl.h>

#include <mutex>
#include <unordered_map>

#include "ingest/simdjson_binding.h"
#include "simdjson.h"

namespace sluice::ingest {

using arrow::Status;
namespace od = simdjson::ondemand;

namespace {

// How often a request in progress checks the stop token.
constexpr int kStopPollMs = 20;
// How much of params and bodies to quote in error messages.
constexpr size_t kQuoteChars = 160;

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

size_t WriteBody(char* ptr, size_t size, size_t n, void* userdata) {
  static_cast<std::string*>(userdata)->append(ptr, size * n);
  return size * n;
}

std::string Describe(std::string_view method, std::string_view params) {
  std::string out(method);
  out += '(';
  if (params.size() > 2) {  // not "[]"
    std::string_view inner = params.substr(1, params.size() - 2);
    if (inner.size() > kQuoteChars) {
      out.append(inner.substr(0, kQuoteChars));
      out += "...";
    } else {
      out.append(inner);
    }
  }
  out += ')';
  return out;
}

std::string_view Quote(std::string_view text) {
  return text.size() > kQuoteChars ? text.substr(0, kQuoteChars) : text;
}

std::string_view TrimRight(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\n' || s.back() == '\r' ||
                        s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

// The parts of one JSON-RPC response object.
struct Envelope {
  bool has_id = false;
  uint64_t id = 0;
  bool has_result = false;
  std::string_view result;  // raw JSON, points into the response buffer
  bool has_error = false;
  int64_t error_code = 0;
  std::string error_message;
  std::string_view error_data;
};

simdjson::error_code RawValue(od::value v, std::string_view* out) {
  od::json_type type;
  if (auto e = v.type().get(type)) return e;
  if (type == od::json_type::object) {
    od::object o;
    if (auto e = v.get_object().get(o)) return e;
    return o.raw_json().get(*out);
  }
  if (type == od::json_type::array) {
    od::array a;
    if (auto e = v.get_array().get(a)) return e;
    return a.raw_json().get(*out);
  }
  *out = TrimRight(v.raw_json_token());
  return simdjson::SUCCESS;
}

simdjson::error_code ParseError(od::value v, Envelope* env) {
  od::object o;
  if (auto e = v.get_object().get(o)) return e;
  for (auto field : o) {
    std::string_view key;
    if (auto e = field.unescaped_key().get(key)) return e;
    od::value fv;
    if (auto e = field.value().get(fv)) return e;
    if (key == "code") {
      if (auto e = fv.get_int64().get(env->error_code)) return e;
    } else if (key == "message") {
      std::string_view m;
      if (auto e = fv.get_string().get(m)) return e;
      env->error_message = std::string(m);
    } else if (key == "data") {
      if (auto e = RawValue(fv, &env->error_data)) return e;
    }
  }
  env->has_error = true;
  return simdjson::SUCCESS;
}

simdjson::error_code ParseEnvelope(od::object o, Envelope* env) {
  for (auto field : o) {
    std::string_view key;
    if (auto e = field.unescaped_key().get(key)) return e;
    od::value v;
    if (auto e = field.value().get(v)) return e;
    if (key == "id") {
      od::json_type type;
      if (auto e = v.type().get(type)) return e;
      if (type == od::json_type::number && v.get_uint64().get(env->id) == simdjson::SUCCESS) {
        env->has_id = true;
      }
    } else if (key == "result") {
      if (auto e = RawValue(v, &env->result)) return e;
      env->has_result = true;
    } else if (key == "error") {
      if (auto e = ParseError(v, env)) return e;
    }
  }
  return simdjson::SUCCESS;
}

Status ErrorStatus(const std::string& what, const Envelope& env) {
  if (env.error_data.empty()) {
    return Status::IOError(what, ": JSON-RPC error ", env.error_code, ": ", env.error_message);
  }
  return Status::IOError(what, ": JSON-RPC error ", env.error_code, ": ", env.error_message,
                         " (data: ", Quote(env.error_data), ")");
}

std::string Padded(std::string_view raw) {
  std::string out;
  out.reserve(raw.size() + simdjson::SIMDJSON_PADDING);
  out.assign(raw);
  return out;
}

}  // namespace

struct RpcClient::Parser {
  od::parser parser;
};

RpcClient::RpcClient(RpcClientOptions options)
    : options_(std::move(options)), parser_(std::make_unique<Parser>()) {}

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
  return Status::OK();
}

Status RpcClient::Post(std::string_view what) {
  if (options_.stop_token.IsStopRequested()) return Status::Cancelled(what, ": stopped");
  CURL* easy = static_cast<CURL*>(easy_);
  CURLM* multi = static_cast<CURLM*>(multi_);
  response_.clear();
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
    return Status::IOError(what, ": ", options_.url, ": ",
                           errbuf[0] ? errbuf : curl_easy_strerror(result));
  }
  long http = 0;
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &http);
  if (http != 200) {
    return Status::IOError(what, ": ", options_.url, ": HTTP ", http, ": ",
                           Quote(TrimRight(response_)));
  }
  response_.reserve(response_.size() + simdjson::SIMDJSON_PADDING);
  return Status::OK();
}

arrow::Result<std::string> RpcClient::Call(std::string_view method, std::string_view params_json) {
  const std::string what = Describe(method, params_json);
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

  od::document doc;
  Envelope env;
  od::object obj;
  auto err = parser_->parser.iterate(response_.data(), response_.size(), response_.capacity())
                 .get(doc);
  if (!err) err = doc.get_object().get(obj);
  if (!err) err = ParseEnvelope(obj, &env);
  if (err) {
    return Status::Invalid(what, ": malformed JSON-RPC response (", simdjson::error_message(err),
                           "): ", Quote(response_));
  }
  if (env.has_error) return ErrorStatus(what, env);
  if (!env.has_result) {
    return Status::Invalid(what, ": JSON-RPC response has neither result nor error: ",
                           Quote(response_));
  }
  if (env.has_id && env.id != id) {
    return Status::Invalid(what, ": JSON-RPC response id ", env.id, " does not match request id ",
                           id);
  }
  return Padded(env.result);
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
      Describe(requests.front().method, requests.front().params);
  ARROW_RETURN_NOT_OK(Post(what));

  std::vector<std::string> results(requests.size());
  std::vector<bool> seen(requests.size(), false);
  od::document doc;
  od::json_type type;
  auto malformed = [&](simdjson::error_code e) {
    return Status::Invalid(what, ": malformed JSON-RPC batch response (",
                           simdjson::error_message(e), "): ", Quote(response_));
  };
  if (auto e = parser_->parser.iterate(response_.data(), response_.size(), response_.capacity())
                   .get(doc)) {
    return malformed(e);
  }
  if (auto e = doc.type().get(type)) return malformed(e);
  if (type == od::json_type::object) {
    // The node rejected the batch as a whole.
    od::object obj;
    Envelope env;
    if (auto e = doc.get_object().get(obj)) return malformed(e);
    if (auto e = ParseEnvelope(obj, &env)) return malformed(e);
    if (env.has_error) return ErrorStatus(what, env);
    return Status::Invalid(what, ": expected a JSON array in answer to a batch: ",
                           Quote(response_));
  }
  od::array arr;
  if (auto e = doc.get_array().get(arr)) return malformed(e);
  for (auto item : arr) {
    od::object obj;
    Envelope env;
    if (auto e = item.get_object().get(obj)) return malformed(e);
    if (auto e = ParseEnvelope(obj, &env)) return malformed(e);
    if (!env.has_id || env.id < first_id || env.id >= first_id + requests.size()) {
      if (env.has_error) return ErrorStatus(what, env);
      return Status::Invalid(what, ": batch response with an unknown id: ", Quote(response_));
    }
    const size_t i = env.id - first_id;
    const auto& req = requests[i];
    if (env.has_error) return ErrorStatus(Describe(req.method, req.params), env);
    if (!env.has_result) {
      return Status::Invalid(Describe(req.method, req.params),
                             ": JSON-RPC response has neither result nor error");
    }
    if (seen[i]) {
      return Status::Invalid(Describe(req.method, req.params),
                             ": batch response repeats id ", env.id);
    }
    seen[i] = true;
    results[i] = Padded(env.result);
  }
  for (size_t i = 0; i < requests.size(); ++i) {
    if (!seen[i]) {
      return Status::Invalid(Describe(requests[i].method, requests[i].params),
                             ": no response in the batch answer (id ", first_id + i, ")");
    }
  }
  return results;
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
