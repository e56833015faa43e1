#include "http/jsonl_server.h"

#include <algorithm>
#include <cctype>
#include <optional>

#include "common/log.h"
#include "common/server_metrics.h"
#include "http/gzip.h"
#include "http/json_lines.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "sql/settings_clause.h"

namespace sluice::http {

namespace {

using common::QueryKind;
using common::QueryOutcome;
using common::ServerMetrics;

// Text is handed to the socket (and gzip) in pieces of about this size.
constexpr size_t kWriteBytes = 256 * 1024;

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

bool IsBlankSql(const std::string& sql) {
  return std::all_of(sql.begin(), sql.end(), [](unsigned char c) {
    return std::isspace(c) || c == ';';
  });
}

const char* ErrorCodeForStatus(int status) {
  switch (status) {
    case 400:
      return "INVALID_ARGUMENT";
    case 404:
      return "NOT_FOUND";
    case 405:
      return "METHOD_NOT_ALLOWED";
    case 413:
      return "PAYLOAD_TOO_LARGE";
    case 503:
      return "UNAVAILABLE";
    default:
      return status < 500 ? "INVALID_ARGUMENT" : "INTERNAL";
  }
}

}  // namespace

bool AcceptsGzip(const std::string& accept_encoding) {
  size_t pos = 0;
  while (pos <= accept_encoding.size()) {
    size_t comma = accept_encoding.find(',', pos);
    if (comma == std::string::npos) comma = accept_encoding.size();
    std::string item = accept_encoding.substr(pos, comma - pos);
    pos = comma + 1;
    size_t semi = item.find(';');
    std::string coding = Lower(Trim(item.substr(0, semi)));
    if (coding != "gzip" && coding != "x-gzip") continue;
    if (semi == std::string::npos) return true;
    std::string param = Lower(Trim(item.substr(semi + 1)));
    if (param.rfind("q=", 0) != 0) return true;
    try {
      return std::stod(param.substr(2)) > 0;
    } catch (const std::exception&) {
      return false;
    }
  }
  return false;
}

// One answer in progress: the engine's reader, the encoder, the optional gzip
// stream. Owned by the content provider; lives until httplib releases it.
struct JsonLinesServer::Query {
  JsonLinesServer* server = nullptr;
  common::Admission slot;  // freed last
  std::unique_ptr<sql::Session> session;
  std::unique_ptr<common::Watch> watch;  // destroyed before the session it interrupts
  std::unique_ptr<sql::ResultReader> reader;
  std::shared_ptr<arrow::RecordBatch> first;  // read before answering 200
  std::unique_ptr<JsonLinesEncoder> encoder;
  std::unique_ptr<GzipStream> gzip;
  std::string text;
  std::string compressed;
  bool json_array = false;  // POST /v1/sql: one JSON array instead of JSON Lines
  bool any_row = false;     // json_array: "[" and a row are written (the next needs a comma)
  std::string lines;        // json_array: rows as JSON Lines, before joining
  bool finished = false;  // the last line is written
  bool counted = false;   // in sluice_queries_total

  void Count(QueryOutcome outcome) {
    if (counted) return;
    counted = true;
    ServerMetrics::Get().CountQuery(QueryKind::kJsonl, outcome);
  }

  // Hand `text` (plus, with gzip, the pending compressed bytes) to the sink.
  bool Flush(httplib::DataSink& sink, bool last) {
    std::string* out = &text;
    if (gzip) {
      compressed.clear();
      auto st = gzip->Write(text, &compressed);
      if (st.ok() && last) st = gzip->Finish(&compressed);
      if (!st.ok()) {
        LOG_WARN("jsonl: {}", st.ToString());
        return false;
      }
      out = &compressed;
    }
    bool ok = true;
    if (!out->empty()) {  // never write 0 bytes: httplib reads it as the end
      ok = sink.write(out->data(), out->size());
      if (ok) {
        ServerMetrics::Get().CountSent(QueryKind::kJsonl, 0, static_cast<int64_t>(out->size()));
      }
    }
    text.clear();
    return ok;
  }

  // The final line after an error, then the end of the answer. Counted before
  // the client can see the end. A JSON array cut by an error is left unclosed
  // (the error object follows on a line of its own) and the connection is closed
  // without the last chunk, so that no client takes it for a whole answer.
  bool End(httplib::DataSink& sink, const arrow::Status& error) {
    finished = true;
    if (json_array && error.ok()) text.append(any_row ? "]\n" : "[]\n");
    if (!error.ok()) {
      auto [status, code] = HttpStatusOf(error);
      if (json_array) text.push_back('\n');
      text.append(ErrorJson(code, error.message()));
      text.push_back('\n');
    }
    Count(common::OutcomeOf(error));
    if (!Flush(sink, true)) return false;
    if (json_array && !error.ok()) return false;
    sink.done();
    return true;
  }

  // Rows [begin, end) of `batch` into `text`: JSON Lines, or elements of the array.
  void Encode(const arrow::RecordBatch& batch, int64_t begin, int64_t end) {
    if (!json_array) {
      encoder->Append(batch, begin, end, &text);
      return;
    }
    lines.clear();
    encoder->Append(batch, begin, end, &lines);
    // A line per row; newlines inside values are escaped, so each '\n' ends a row.
    size_t pos = 0;
    while (pos < lines.size()) {
      size_t nl = lines.find('\n', pos);
      if (nl == std::string::npos) nl = lines.size();
      text.push_back(any_row ? ',' : '[');
      any_row = true;
      text.append(lines, pos, nl - pos);
      pos = nl + 1;
    }
  }

  // Called by httplib until the answer is done: one record batch per call.
  bool Produce(httplib::DataSink& sink) {
    if (finished) {
      sink.done();
      return true;
    }
    if (watch && watch->timed_out()) return End(sink, watch->Explain(arrow::Status::OK()));
    std::shared_ptr<arrow::RecordBatch> batch = std::move(first);
    if (!batch) {
      auto st = reader->ReadNext(&batch);
      if (!st.ok() && watch) st = watch->Explain(std::move(st));
      if (!st.ok()) {
        if (st.IsCancelled() && server->stopping()) {
          st = arrow::Status::Cancelled("the server is shutting down");
        }
        return End(sink, st);
      }
      if (!batch) return End(sink, arrow::Status::OK());
    }
    const int64_t n = batch->num_rows();
    int64_t row = 0;
    while (row < n) {
      // Rows in slices of about kWriteBytes of text.
      int64_t step = std::max<int64_t>(1, std::min<int64_t>(n - row, 1024));
      Encode(*batch, row, row + step);
      row += step;
      if (text.size() >= kWriteBytes || row == n) {
        if (!Flush(sink, false)) return false;
      }
    }
    ServerMetrics::Get().CountSent(QueryKind::kJsonl, n, 0);
    return true;
  }
};

bool JsonLinesServer::stopping() {
  std::lock_guard<std::mutex> lock(mu_);
  return stopping_;
}

arrow::Result<std::unique_ptr<JsonLinesServer>> JsonLinesServer::Make(sql::Engine* engine,
                                                                     JsonLinesOptions options) {
  if (options.rows_per_batch < 1) {
    return arrow::Status::Invalid("jsonl: rows_per_batch must be >= 1");
  }
  std::unique_ptr<JsonLinesServer> s(new JsonLinesServer());
  s->engine_ = engine;
  s->options_ = options;
  ListenOptions listen = options.listen;
  listen.open_paths = {"/health"};
  ARROW_ASSIGN_OR_RAISE(s->http_, HttpServer::Bind("jsonl", listen));
  auto& svr = s->http_->server();
  JsonLinesServer* self = s.get();

  svr.Get("/health", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("{\"status\":\"ok\"}", "application/json");
  });
  svr.Get("/", [](const httplib::Request&, httplib::Response& res) {
    SetError(&res, 405, "METHOD_NOT_ALLOWED", "POST the SQL text of a query to /");
  });
  svr.Post("/", [self](const httplib::Request& req, httplib::Response& res) {
    self->Handle(req, &res, Answer::kJsonLines);
  });
  // Spice's HTTP API (what spice.js falls back to): the answer as one JSON array.
  svr.Post("/v1/sql", [self](const httplib::Request& req, httplib::Response& res) {
    self->Handle(req, &res, Answer::kJsonArray);
  });
  svr.Get("/v1/sql", [](const httplib::Request&, httplib::Response& res) {
    SetError(&res, 405, "METHOD_NOT_ALLOWED", "POST the SQL text of a query to /v1/sql");
  });
  // Errors httplib answers by itself (404, 413, …) get the JSON error body too.
  svr.set_error_handler(httplib::Server::HandlerWithResponse(
      [](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    std::string message = "request refused";
    if (res.status == 404) {
      message = "no such endpoint: " + req.method + " " + req.path +
                " (POST /, POST /v1/sql, GET /health)";
    } else if (res.status == 400) {
      message = "malformed request: POST / with the SQL text as the body (with Content-Length "
                "or chunked)";
    } else if (res.status == 413) {
      message = "request body too large";
    }
    SetError(&res, res.status, ErrorCodeForStatus(res.status), message);
    return httplib::Server::HandlerResponse::Handled;
  }));
  return s;
}

JsonLinesServer::~JsonLinesServer() { Stop(); }

void JsonLinesServer::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    for (auto* q : running_) q->session->Interrupt();
  }
  if (http_) http_->Stop();
}

void JsonLinesServer::Register(Query* q) {
  std::lock_guard<std::mutex> lock(mu_);
  running_.insert(q);
  if (stopping_) q->session->Interrupt();
}

void JsonLinesServer::Unregister(Query* q) {
  std::lock_guard<std::mutex> lock(mu_);
  running_.erase(q);
}

namespace {

// The SQL of a POST /v1/sql body: the text itself, or, with Content-Type
// application/json, the object {"sql": "…"} (Spice's envelope; its "parameters"
// are for Flight prepared statements, refused here).
arrow::Result<std::string> SpiceSqlOf(const httplib::Request& req) {
  const std::string type = Lower(req.get_header_value("Content-Type"));
  if (type.rfind("application/json", 0) != 0) return req.body;
  auto body = nlohmann::json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded() || !body.is_object() || !body.contains("sql") ||
      !body["sql"].is_string()) {
    return arrow::Status::Invalid(
        "a Content-Type application/json body must be an object {\"sql\": \"SELECT …\"}; "
        "or send the SQL text itself");
  }
  auto params = body.find("parameters");
  if (params != body.end() && !params->is_null() && !params->empty()) {
    return arrow::Status::Invalid(
        "query parameters are supported over Arrow Flight (Flight SQL prepared statements), "
        "not over HTTP");
  }
  return body["sql"].get<std::string>();
}

}  // namespace

void JsonLinesServer::Handle(const httplib::Request& req, httplib::Response* res,
                             Answer answer) {
  auto& metrics = ServerMetrics::Get();
  auto refuse = [&](int http_status, const std::string& code, const std::string& message,
                    QueryOutcome outcome) {
    SetError(res, http_status, code, message);
    metrics.CountQuery(QueryKind::kJsonl, outcome);
  };
  auto refuse_status = [&](const arrow::Status& st) {
    auto [http_status, code] = HttpStatusOf(st);
    refuse(http_status, code, st.message(), common::OutcomeOf(st));
  };

  std::string body_sql = req.body;
  if (answer == Answer::kJsonArray) {
    auto sql = SpiceSqlOf(req);
    if (!sql.ok()) return refuse_status(sql.status());
    body_sql = std::move(*sql);
  }
  auto settings = sql::ExtractSettings(body_sql);
  if (!settings.ok()) return refuse_status(settings.status());
  std::optional<bool> header;
  if (req.has_header("amp-stream")) {
    auto parsed = sql::ParseStreamHeader(req.get_header_value("amp-stream"));
    if (!parsed.ok()) {
      return refuse_status(
          arrow::Status::Invalid("header amp-stream: ", parsed.status().message()));
    }
    header = *parsed;
  }
  if (sql::IsStreaming(*settings, header)) {
    return refuse(400, "STREAMING_NOT_SUPPORTED",
                  "streaming queries (SETTINGS stream = true, amp-stream: true) are served over "
                  "Arrow Flight only; remove the setting to run this query once",
                  QueryOutcome::kError);
  }
  if (IsBlankSql(settings->sql)) {
    return refuse(400, "INVALID_ARGUMENT", "the request body must hold the SQL text of a query",
                  QueryOutcome::kError);
  }

  auto q = std::make_shared<Query>();
  q->server = this;
  q->json_array = answer == Answer::kJsonArray;
  if (options_.limits) {
    auto slot = options_.limits->AdmitQuery();
    if (!slot.ok()) {
      res->set_header("Retry-After", "1");
      return refuse_status(slot.status());
    }
    q->slot = std::move(*slot);
  }
  auto session = engine_->OpenSession();
  if (!session.ok()) return refuse_status(session.status());
  q->session = std::move(*session);
  if (options_.limits) {
    // The deadline only: httplib tells of a client gone at the next write.
    q->watch = options_.limits->WatchQuery(nullptr, [s = q->session.get()] { s->Interrupt(); });
  }
  Register(q.get());
  // Plan, and read the first batch before answering, so that an error the
  // engine finds early (SQL, sandbox, the first rows) gets its status code.
  auto st = [&]() -> arrow::Status {
    ARROW_ASSIGN_OR_RAISE(q->reader, q->session->Execute(settings->sql, options_.rows_per_batch));
    ARROW_RETURN_NOT_OK(q->reader->ReadNext(&q->first));
    if (AcceptsGzip(req.get_header_value("Accept-Encoding"))) {
      ARROW_ASSIGN_OR_RAISE(q->gzip, GzipStream::Make());
    }
    return arrow::Status::OK();
  }();
  if (!st.ok() && q->watch) st = q->watch->Explain(std::move(st));
  if (!st.ok()) {
    Unregister(q.get());
    if (st.IsCancelled() && stopping()) {
      st = arrow::Status::Cancelled("the server is shutting down");
    }
    return refuse_status(st);
  }
  q->encoder = std::make_unique<JsonLinesEncoder>(*q->reader->schema());

  res->status = 200;
  if (q->gzip) {
    res->set_header("Content-Encoding", "gzip");
    res->set_header("Vary", "Accept-Encoding");
  }
  // Not the bare "application/json": cpp-httplib would gzip that type once more
  // itself (a second Content-Encoding: gzip), and gzip is done here, batch by batch.
  res->set_chunked_content_provider(
      q->json_array ? "application/json; charset=utf-8" : "application/x-ndjson",
      [q](size_t /*offset*/, httplib::DataSink& sink) { return q->Produce(sink); },
      [q, this](bool success) {
        Unregister(q.get());
        if (!q->finished) q->session->Interrupt();  // the client went away
        q->Count(success && q->finished ? QueryOutcome::kOk : QueryOutcome::kCancelled);
      });
}

}  // namespace sluice::http
