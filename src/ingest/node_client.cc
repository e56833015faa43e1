#include "ingest/node_client.h"

#include <algorithm>
#include <thread>

#include "common/log.h"

namespace sluice::ingest {

using arrow::Status;
using std::chrono::duration_cast;
using std::chrono::milliseconds;

namespace {

Status RateLimitedStatus(const Status& last, std::chrono::steady_clock::duration wait) {
  auto detail = std::make_shared<RpcErrorDetail>(RpcErrorKind::kRateLimited);
  detail->retry_after = std::max(milliseconds(1), std::chrono::ceil<milliseconds>(wait));
  std::string msg = "every endpoint is rate limited; the first may be asked again in " +
                    std::to_string(detail->retry_after->count()) + " ms";
  if (!last.ok()) msg += " (last answer: " + last.message() + ")";
  return WithRpcError(Status::IOError(msg), std::move(detail));
}

}  // namespace

Status NodeOptions::Validate() const {
  if (urls.empty()) return Status::Invalid("node: no JSON-RPC endpoint (rpc_url) given");
  for (const auto& u : urls) {
    if (u.empty()) return Status::Invalid("node: an empty rpc_url");
  }
  if (connect_timeout.count() <= 0 || request_timeout.count() <= 0) {
    return Status::Invalid("node: timeouts must be > 0");
  }
  if (failback.count() <= 0) return Status::Invalid("node: failback must be > 0");
  if (retry_after_max.count() < 0 || retry_after_default.count() < 0) {
    return Status::Invalid("node: retry_after_max and retry_after_default must be >= 0");
  }
  if (max_requests_per_sec < 0) return Status::Invalid("node: max_requests_per_sec must be >= 0");
  return Status::OK();
}

// ---- NodeEndpoints -----------------------------------------------------------------

NodeEndpoints::NodeEndpoints(NodeOptions options) : options_(std::move(options)) {
  for (const auto& url : options_.urls) {
    Endpoint e;
    e.url = url;
    e.redacted = RedactUrl(url);
    e.batch_limit = options_.max_batch_calls;
    endpoints_.push_back(std::move(e));
  }
  tokens_ = std::max(1.0, options_.max_requests_per_sec);
  refilled_ = Clock::now();
}

arrow::Result<std::shared_ptr<NodeEndpoints>> NodeEndpoints::Make(NodeOptions options) {
  ARROW_RETURN_NOT_OK(options.Validate());
  return std::shared_ptr<NodeEndpoints>(new NodeEndpoints(std::move(options)));
}

std::vector<EndpointStatus> NodeEndpoints::Status() const {
  std::lock_guard<std::mutex> lock(mu_);
  const auto now = Clock::now();
  std::vector<EndpointStatus> out;
  for (const auto& e : endpoints_) {
    EndpointStatus s;
    s.url = e.redacted;
    s.state = e.limited_until && *e.limited_until > now ? "rate_limited"
              : e.down_until && *e.down_until > now     ? "down"
                                                        : "up";
    s.last_error = e.last_error;
    s.batch_limit = e.batch_limit;
    s.requests = e.requests;
    s.failures = e.failures;
    s.rate_limited = e.rate_limited;
    out.push_back(std::move(s));
  }
  return out;
}

NodeCounters NodeEndpoints::counters() const {
  std::lock_guard<std::mutex> lock(mu_);
  return counters_;
}

void NodeEndpoints::Reset() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& e : endpoints_) {
    e.checked = false;
    e.down_until.reset();
    e.limited_until.reset();
  }
}

std::optional<size_t> NodeEndpoints::Pick(const std::vector<bool>& tried, Clock::duration* wait) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto now = Clock::now();
  std::optional<size_t> fallback;
  std::optional<Clock::time_point> first_free;
  for (size_t i = 0; i < endpoints_.size(); ++i) {
    if (tried[i]) continue;
    const auto& e = endpoints_[i];
    if (e.limited_until && *e.limited_until > now) {
      if (!first_free || *e.limited_until < *first_free) first_free = e.limited_until;
      continue;
    }
    if (!e.down_until || *e.down_until <= now) return i;
    if (!fallback || e.failed_at < endpoints_[*fallback].failed_at) fallback = i;
  }
  if (fallback) return fallback;
  if (first_free) *wait = *first_free - now;
  return std::nullopt;
}

void NodeEndpoints::Succeeded(size_t i) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& e = endpoints_[i];
  if (e.down_until) {
    LOG_INFO("JSON-RPC endpoint {} answers again; it is used again", e.redacted);
    e.down_until.reset();
  }
  e.last_error.clear();
}

void NodeEndpoints::Failed(size_t i, const arrow::Status& st) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& e = endpoints_[i];
  const auto now = Clock::now();
  ++e.failures;
  e.last_error = st.ToString();
  e.failed_at = now;
  if (endpoints_.size() < 2) return;  // nothing to fail over to
  const bool was_up = !e.down_until || *e.down_until <= now;
  e.down_until = now + options_.failback;
  if (was_up) {
    ++counters_.failovers;
    LOG_WARN("JSON-RPC endpoint {} failed ({}); using the next endpoint, and this one again in "
             "{} ms",
             e.redacted, st.message(), options_.failback.count());
  }
}

void NodeEndpoints::RateLimited(size_t i, const arrow::Status& st) {
  const auto* d = RpcErrorOf(st);
  milliseconds wait = d && d->retry_after ? *d->retry_after : options_.retry_after_default;
  wait = std::min(wait, options_.retry_after_max);
  std::lock_guard<std::mutex> lock(mu_);
  auto& e = endpoints_[i];
  ++e.rate_limited;
  ++counters_.rate_limited;
  e.last_error = st.ToString();
  e.limited_until = Clock::now() + wait;
  LOG_DEBUG("JSON-RPC endpoint {} is rate limited for {} ms", e.redacted, wait.count());
}

uint32_t NodeEndpoints::BatchLimit(size_t i) {
  std::lock_guard<std::mutex> lock(mu_);
  return endpoints_[i].batch_limit;
}

void NodeEndpoints::LowerBatchLimit(size_t i, uint32_t calls, const arrow::Status& why) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& e = endpoints_[i];
  calls = std::max<uint32_t>(1, calls);
  ++counters_.batch_splits;
  if (e.batch_limit != 0 && e.batch_limit <= calls) return;
  e.batch_limit = calls;
  LOG_WARN("JSON-RPC endpoint {} refused a batch for its size ({}); batches to it now hold at "
           "most {} calls",
           e.redacted, why.message(), calls);
}

bool NodeEndpoints::NeedsCheck(size_t i) {
  std::lock_guard<std::mutex> lock(mu_);
  return check_ && !endpoints_[i].checked;
}

void NodeEndpoints::MarkChecked(size_t i) {
  std::lock_guard<std::mutex> lock(mu_);
  endpoints_[i].checked = true;
}

Status NodeEndpoints::Throttle(const arrow::StopToken& stop) {
  const double rate = options_.max_requests_per_sec;
  while (true) {
    if (stop.IsStopRequested()) return Status::Cancelled("stopped");
    Clock::duration wait{};
    {
      std::lock_guard<std::mutex> lock(mu_);
      const auto now = Clock::now();
      if (rate <= 0) return Status::OK();
      const double capacity = std::max(1.0, rate);
      tokens_ = std::min(capacity, tokens_ + std::chrono::duration<double>(now - refilled_).count() * rate);
      refilled_ = now;
      if (tokens_ >= 1.0) {
        tokens_ -= 1.0;
        return Status::OK();
      }
      wait = std::chrono::duration_cast<Clock::duration>(
          std::chrono::duration<double>((1.0 - tokens_) / rate));
    }
    std::this_thread::sleep_for(std::min<Clock::duration>(wait, milliseconds(20)));
  }
}

// ---- NodeClient ---------------------------------------------------------------------

NodeClient::NodeClient(std::shared_ptr<NodeEndpoints> endpoints, arrow::StopToken stop_token)
    : endpoints_(std::move(endpoints)), stop_token_(std::move(stop_token)) {
  clients_.resize(endpoints_->size());
}

arrow::Result<std::unique_ptr<NodeClient>> NodeClient::Make(
    std::shared_ptr<NodeEndpoints> endpoints, arrow::StopToken stop_token) {
  if (!endpoints) return Status::Invalid("node client: no endpoints");
  return std::unique_ptr<NodeClient>(new NodeClient(std::move(endpoints), std::move(stop_token)));
}

arrow::Result<RpcClient*> NodeClient::Client(size_t i) {
  if (!clients_[i]) {
    RpcClientOptions o;
    o.url = endpoints_->options().urls[i];
    o.connect_timeout = endpoints_->options().connect_timeout;
    o.request_timeout = endpoints_->options().request_timeout;
    o.stop_token = stop_token_;
    ARROW_ASSIGN_OR_RAISE(clients_[i], RpcClient::Make(std::move(o)));
  }
  return clients_[i].get();
}

template <typename T>
arrow::Result<T> NodeClient::WithFailover(const std::function<arrow::Result<T>(size_t)>& op) {
  std::vector<bool> tried(endpoints_->size(), false);
  Status last;
  while (true) {
    NodeEndpoints::Clock::duration wait{};
    auto pick = endpoints_->Pick(tried, &wait);
    if (!pick) {
      if (wait.count() > 0) return RateLimitedStatus(last, wait);
      return last;
    }
    const size_t i = *pick;
    tried[i] = true;
    if (endpoints_->NeedsCheck(i)) {
      Status checked;
      {
        std::lock_guard<std::mutex> lock(endpoints_->check_mu_);
        if (endpoints_->NeedsCheck(i)) {
          ARROW_ASSIGN_OR_RAISE(RpcClient * client, Client(i));
          checked = endpoints_->check_(client, i);
          if (checked.ok()) endpoints_->MarkChecked(i);
        }
      }
      if (checked.IsCancelled()) return checked;
      if (!checked.ok()) {
        const auto* d = RpcErrorOf(checked);
        if (d && d->kind == RpcErrorKind::kRateLimited) {
          endpoints_->RateLimited(i, checked);
        } else {
          endpoints_->Failed(i, checked);
        }
        last = checked;
        continue;
      }
    }
    arrow::Result<T> r = op(i);
    if (r.ok()) {
      endpoints_->Succeeded(i);
      return r;
    }
    const Status& st = r.status();
    if (st.IsCancelled()) return st;
    const auto* d = RpcErrorOf(st);
    if (d && d->kind == RpcErrorKind::kMethodNotFound) return st;  // the caller decides
    if (d && d->kind == RpcErrorKind::kRateLimited) {
      endpoints_->RateLimited(i, st);
    } else {
      endpoints_->Failed(i, st);
    }
    last = st;
  }
}

arrow::Result<std::string> NodeClient::Call(std::string_view method,
                                            std::string_view params_json) {
  std::string m(method), p(params_json);
  return WithFailover<std::string>([&](size_t i) -> arrow::Result<std::string> {
    ARROW_ASSIGN_OR_RAISE(RpcClient * client, Client(i));
    ARROW_RETURN_NOT_OK(endpoints_->Throttle(stop_token_));
    {
      std::lock_guard<std::mutex> lock(endpoints_->mu_);
      ++endpoints_->endpoints_[i].requests;
    }
    return client->Call(m, p);
  });
}

arrow::Result<std::vector<std::string>> NodeClient::BatchOn(
    size_t i, const std::vector<RpcRequest>& requests) {
  ARROW_ASSIGN_OR_RAISE(RpcClient * client, Client(i));
  const uint32_t limit = endpoints_->BatchLimit(i);
  std::vector<std::string> out;
  if (limit == 1 || requests.size() == 1) {
    for (const auto& r : requests) {
      ARROW_RETURN_NOT_OK(endpoints_->Throttle(stop_token_));
      {
        std::lock_guard<std::mutex> lock(endpoints_->mu_);
        ++endpoints_->endpoints_[i].requests;
      }
      ARROW_ASSIGN_OR_RAISE(auto result, client->Call(r.method, r.params));
      out.push_back(std::move(result));
    }
    return out;
  }
  if (limit != 0 && requests.size() > limit) {
    for (size_t from = 0; from < requests.size(); from += limit) {
      std::vector<RpcRequest> part(requests.begin() + from,
                                   requests.begin() + std::min(requests.size(), from + limit));
      ARROW_ASSIGN_OR_RAISE(auto results, BatchOn(i, part));
      for (auto& r : results) out.push_back(std::move(r));
    }
    return out;
  }
  ARROW_RETURN_NOT_OK(endpoints_->Throttle(stop_token_));
  {
    std::lock_guard<std::mutex> lock(endpoints_->mu_);
    ++endpoints_->endpoints_[i].requests;
  }
  auto r = client->CallBatch(requests);
  if (r.ok()) return r;
  const auto* d = RpcErrorOf(r.status());
  if (d == nullptr || d->kind != RpcErrorKind::kBatchTooLarge) return r;
  const size_t n = requests.size();
  const size_t accepted = d->answered > 0 && d->answered < n ? d->answered : n / 2;
  endpoints_->LowerBatchLimit(i, static_cast<uint32_t>(std::max<size_t>(1, accepted)), r.status());
  return BatchOn(i, requests);
}

arrow::Result<std::vector<std::string>> NodeClient::CallBatch(
    const std::vector<RpcRequest>& requests) {
  if (requests.empty()) return std::vector<std::string>{};
  return WithFailover<std::vector<std::string>>(
      [&](size_t i) { return BatchOn(i, requests); });
}

Status NodeClient::EnsureChecked() {
  return WithFailover<bool>([](size_t) -> arrow::Result<bool> { return true; }).status();
}

}  // namespace sluice::ingest
