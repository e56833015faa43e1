#include "ingest/rpc_response.h"

#include "ingest/rpc_client.h"
#include "ingest/rpc_error.h"
#include "simdjson.h"

namespace sluice::ingest {

using arrow::Status;
namespace od = simdjson::ondemand;

namespace {
// How much of params and bodies to quote in error messages.
constexpr size_t kQuoteChars = 160;
}  // namespace

std::string_view QuoteForMessage(std::string_view text) {
  return text.size() > kQuoteChars ? text.substr(0, kQuoteChars) : text;
}

std::string_view TrimJsonWhitespace(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\n' || s.back() == '\r' ||
                        s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

namespace {

std::string_view Quote(std::string_view text) { return QuoteForMessage(text); }
std::string_view TrimRight(std::string_view s) { return TrimJsonWhitespace(s); }

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

Status ErrorStatus(std::string_view what, const Envelope& env, size_t answered = 0) {
  auto detail = std::make_shared<RpcErrorDetail>(
      ClassifyRpcError(env.error_code, env.error_message));
  detail->rpc_code = env.error_code;
  detail->answered = answered;
  Status st = env.error_data.empty()
                  ? Status::IOError(what, ": JSON-RPC error ", env.error_code, ": ",
                                    env.error_message)
                  : Status::IOError(what, ": JSON-RPC error ", env.error_code, ": ",
                                    env.error_message, " (data: ", Quote(env.error_data), ")");
  return WithRpcError(std::move(st), std::move(detail));
}

Status Malformed(Status st) {
  return WithRpcError(std::move(st), std::make_shared<RpcErrorDetail>(RpcErrorKind::kMalformed));
}

std::string Padded(std::string_view raw) {
  std::string out;
  out.reserve(raw.size() + simdjson::SIMDJSON_PADDING);
  out.assign(raw);
  return out;
}

// simdjson reads up to SIMDJSON_PADDING bytes past the end of its input.
void Pad(std::string* body) { body->reserve(body->size() + simdjson::SIMDJSON_PADDING); }

}  // namespace

std::string DescribeCall(std::string_view method, std::string_view params) {
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

struct RpcResponseParser::Impl {
  od::parser parser;
};

RpcResponseParser::RpcResponseParser() : impl_(std::make_unique<Impl>()) {}
RpcResponseParser::~RpcResponseParser() = default;

arrow::Result<std::string> RpcResponseParser::ParseCall(std::string_view what, uint64_t id,
                                                        std::string* body) {
  Pad(body);
  od::document doc;
  Envelope env;
  od::object obj;
  auto err = impl_->parser.iterate(body->data(), body->size(), body->capacity())
                 .get(doc);
  if (!err) err = doc.get_object().get(obj);
  if (!err) err = ParseEnvelope(obj, &env);
  if (err) {
    return Malformed(Status::Invalid(what, ": malformed JSON-RPC response (",
                                     simdjson::error_message(err), "): ", Quote(*body)));
  }
  if (env.has_error) return ErrorStatus(what, env);
  if (!env.has_result) {
    return Malformed(Status::Invalid(what, ": JSON-RPC response has neither result nor error: ",
                                     Quote(*body)));
  }
  if (env.has_id && env.id != id) {
    return Malformed(Status::Invalid(what, ": JSON-RPC response id ", env.id,
                                     " does not match request id ", id));
  }
  return Padded(env.result);
}

arrow::Result<std::vector<std::string>> RpcResponseParser::ParseBatch(
    std::string_view what, const std::vector<RpcRequest>& requests, uint64_t first_id,
    std::string* body) {
  Pad(body);
  std::vector<std::string> results(requests.size());
  std::vector<bool> seen(requests.size(), false);
  od::document doc;
  od::json_type type;
  auto malformed = [&](simdjson::error_code e) {
    return Malformed(Status::Invalid(what, ": malformed JSON-RPC batch response (",
                                     simdjson::error_message(e), "): ", Quote(*body)));
  };
  size_t answered = 0;
  if (auto e = impl_->parser.iterate(body->data(), body->size(), body->capacity())
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
    return Malformed(Status::Invalid(what, ": expected a JSON array in answer to a batch: ",
                                     Quote(*body)));
  }
  od::array arr;
  if (auto e = doc.get_array().get(arr)) return malformed(e);
  for (auto item : arr) {
    od::object obj;
    Envelope env;
    if (auto e = item.get_object().get(obj)) return malformed(e);
    if (auto e = ParseEnvelope(obj, &env)) return malformed(e);
    if (!env.has_id || env.id < first_id || env.id >= first_id + requests.size()) {
      if (env.has_error) return ErrorStatus(what, env, answered);
      return Malformed(
          Status::Invalid(what, ": batch response with an unknown id: ", Quote(*body)));
    }
    const size_t i = env.id - first_id;
    const auto& req = requests[i];
    if (env.has_error) return ErrorStatus(DescribeCall(req.method, req.params), env, answered);
    if (!env.has_result) {
      return Malformed(Status::Invalid(DescribeCall(req.method, req.params),
                                       ": JSON-RPC response has neither result nor error"));
    }
    if (seen[i]) {
      return Malformed(Status::Invalid(DescribeCall(req.method, req.params),
                                       ": batch response repeats id ", env.id));
    }
    seen[i] = true;
    ++answered;
    results[i] = Padded(env.result);
  }
  for (size_t i = 0; i < requests.size(); ++i) {
    if (!seen[i]) {
      // A partial answer: providers cut batches they find too large this way.
      auto detail = std::make_shared<RpcErrorDetail>(RpcErrorKind::kBatchTooLarge);
      detail->answered = answered;
      return WithRpcError(
          Status::Invalid(DescribeCall(requests[i].method, requests[i].params),
                          ": no response in the batch answer (id ", first_id + i, "; ", answered,
                          " of ", requests.size(), " calls answered)"),
          std::move(detail));
    }
  }
  return results;
}

}  // namespace sluice::ingest
