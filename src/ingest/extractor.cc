#include "ingest/extractor.h"

#include <algorithm>

#include "arrow/table.h"
#include "common/log.h"
#include "ingest/evm_decode.h"
#include "ingest/evm_schema.h"
#include "ingest/hex_quantity.h"
#include "ingest/rpc_client.h"
#include "verify/block_verifier.h"

namespace sluice::ingest {

using arrow::Status;

namespace {

// Attempts a backfill worker makes at one batch before handing the error to the
// extraction thread (which then restarts the round after its own backoff).
constexpr int kWorkerAttempts = 3;
// At most one warning per this interval; the others are counted.
constexpr auto kWarnInterval = std::chrono::seconds(5);

const char* TagName(FinalityTag tag) {
  switch (tag) {
    case FinalityTag::kLatest:
      return "latest";
    case FinalityTag::kSafe:
      return "safe";
    case FinalityTag::kFinalized:
      return "finalized";
  }
  return "latest";
}

// How long a failure asks to wait: the Retry-After of a rate-limited answer.
std::chrono::milliseconds RetryAfter(const Status& st) {
  const auto* d = RpcErrorOf(st);
  if (d && d->kind == RpcErrorKind::kRateLimited && d->retry_after) return *d->retry_after;
  return std::chrono::milliseconds(0);
}


}  // namespace

Status ExtractorOptions::Validate() const {
  ARROW_RETURN_NOT_OK(node.Validate());
  if (batch_blocks < 1 || batch_blocks > 10000) {
    return Status::Invalid("extractor: batch_blocks must be in [1, 10000], got ", batch_blocks);
  }
  if (max_in_flight < 1 || max_in_flight > 256) {
    return Status::Invalid("extractor: max_in_flight must be in [1, 256], got ", max_in_flight);
  }
  if (commit_blocks < 1) return Status::Invalid("extractor: commit_blocks must be >= 1");
  if (poll_interval.count() <= 0) return Status::Invalid("extractor: poll_interval must be > 0");
  if (commit_interval.count() < 0) {
    return Status::Invalid("extractor: commit_interval must be >= 0");
  }
  if (backoff_initial.count() <= 0 || backoff_max < backoff_initial) {
    return Status::Invalid("extractor: need 0 < backoff_initial <= backoff_max");
  }
  if (head_recheck_interval.count() < 0 || start_timeout.count() < 0) {
    return Status::Invalid("extractor: head_recheck_interval and start_timeout must be >= 0");
  }
  if (stop_at && start_block && *stop_at < *start_block) {
    return Status::Invalid("extractor: stop_at ", *stop_at, " is below start_block ",
                           *start_block);
  }
  return Status::OK();
}

// ---- lifecycle ----------------------------------------------------------------------

Extractor::Extractor(ExtractorOptions options, storage::BlockStore* store)
    : options_(std::move(options)), store_(store), pacer_(options_.poll_interval) {}

Extractor::~Extractor() { Stop(); }

arrow::Result<std::unique_ptr<Extractor>> Extractor::Make(ExtractorOptions options,
                                                          storage::BlockStore* store) {
  ARROW_RETURN_NOT_OK(options.Validate());
  if (!store) return Status::Invalid("extractor: no store");
  for (const auto& want : EvmTables()) {
    const auto& have = store->options().tables;
    auto it = std::find_if(have.begin(), have.end(),
                           [&](const storage::TableDef& t) { return t.name == want.name; });
    if (it == have.end() || !it->schema->Equals(*want.schema, /*check_metadata=*/false)) {
      return Status::Invalid("extractor: the store's table '", want.name,
                             "' is missing or not the EVM schema; open the store with "
                             "ingest::EvmTables()");
    }
  }
  std::unique_ptr<Extractor> ex(new Extractor(std::move(options), store));
  ARROW_ASSIGN_OR_RAISE(ex->endpoints_, NodeEndpoints::Make(ex->options_.node));
  Extractor* self = ex.get();
  ex->endpoints_->set_check(
      [self](RpcClient* client, size_t i) { return self->CheckEndpoint(client, i); });
  return ex;
}

Status Extractor::Start() {
  if (running_.load()) return Status::Invalid("extractor: already running");
  Stop();  // joins the workers of a previous run that ended on its own
  stopping_ = false;
  stop_source_ = std::make_unique<arrow::StopSource>();
  identity_checked_ = false;
  verify_head_ = true;
  fatal_ = false;
  {
    std::lock_guard<std::mutex> lock(error_mu_);
    fatal_status_ = Status::OK();
  }
  pacer_.Reset();
  failed_ = false;
  finished_ = false;
  {
    std::lock_guard<std::mutex> lock(error_mu_);
    last_error_.clear();
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.clear();
    results_.clear();
    ++generation_;
  }

  endpoints_->Reset();
  block_receipts_ = options_.receipts != ReceiptsMode::kTransaction;
  ARROW_ASSIGN_OR_RAISE(client_, NodeClient::Make(endpoints_, stop_source_->token()));
  ARROW_ASSIGN_OR_RAISE(decoder_, EvmDecoder::Make());
  worker_clients_.clear();
  worker_decoders_.clear();
  for (uint32_t i = 0; i < options_.max_in_flight; ++i) {
    ARROW_ASSIGN_OR_RAISE(auto c, NodeClient::Make(endpoints_, stop_source_->token()));
    ARROW_ASSIGN_OR_RAISE(auto d, EvmDecoder::Make());
    worker_clients_.push_back(std::move(c));
    worker_decoders_.push_back(std::move(d));
  }

  auto head = store_->head();
  stored_head_ = head ? head->number : kNone;
  {
    std::lock_guard<std::mutex> lock(mu_);
    identity_state_ = IdentityState::kPending;
    identity_status_ = Status::OK();
  }

  running_ = true;
  for (size_t i = 0; i < worker_clients_.size(); ++i) {
    workers_.emplace_back(
        [this, i] { WorkerLoop(worker_clients_[i].get(), worker_decoders_[i].get()); });
  }
  thread_ = std::thread([this] { Run(); });

  // Wait for the identity check: a refusal fails Start; anything else does not.
  Status identity;
  {
    std::unique_lock<std::mutex> lock(mu_);
    identity_cv_.wait_for(lock, options_.start_timeout,
                          [&] { return identity_state_ == IdentityState::kDone; });
    identity = identity_status_;
  }
  if (!identity.ok() && failed_.load()) {
    Stop();
    return identity;
  }
  std::string urls;
  for (const auto& u : options_.node.urls) urls += (urls.empty() ? "" : ", ") + RedactUrl(u);
  LOG_INFO("{}: extracting from {} (stored head {})", store_->options().dataset, urls,
           head ? std::to_string(head->number) : std::string("none"));
  return Status::OK();
}

void Extractor::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    if (stop_source_) stop_source_->RequestStop();
  }
  work_cv_.notify_all();
  result_cv_.notify_all();
  sleep_cv_.notify_all();
  JoinThreads();
  running_ = false;
}

void Extractor::JoinThreads() {
  if (thread_.joinable()) thread_.join();
  for (auto& w : workers_) {
    if (w.joinable()) w.join();
  }
  workers_.clear();
}

std::optional<uint64_t> Extractor::node_head() const {
  uint64_t v = node_head_.load();
  return v == kNone ? std::nullopt : std::optional<uint64_t>(v);
}

std::optional<uint64_t> Extractor::stored_head() const {
  uint64_t v = stored_head_.load();
  return v == kNone ? std::nullopt : std::optional<uint64_t>(v);
}

std::string Extractor::last_error() const {
  std::lock_guard<std::mutex> lock(error_mu_);
  return last_error_;
}

// ---- errors, sleeping -------------------------------------------------------------------

Status Extractor::Fatal(Status st) {
  std::lock_guard<std::mutex> lock(error_mu_);
  if (fatal_status_.ok()) fatal_status_ = st;
  fatal_ = true;
  return st;
}

Status Extractor::CountRpc(Status st) {
  if (!st.ok() && !st.IsCancelled()) rpc_errors_.fetch_add(1);
  return st;
}

void Extractor::RecordError(const Status& st) {
  std::string text = st.ToString();
  auto now = Clock::now();
  uint64_t suppressed = 0;
  bool log = false;
  {
    std::lock_guard<std::mutex> lock(error_mu_);
    last_error_ = text;
    if (last_warn_ == Clock::time_point{} || now - last_warn_ >= kWarnInterval) {
      last_warn_ = now;
      suppressed = suppressed_warns_;
      suppressed_warns_ = 0;
      log = true;
    } else {
      ++suppressed_warns_;
    }
  }
  if (!log) return;
  if (suppressed) {
    LOG_WARN("{}: {} ({} similar warnings in the last {}s not shown)", store_->options().dataset,
             text, suppressed,
             std::chrono::duration_cast<std::chrono::seconds>(kWarnInterval).count());
  } else {
    LOG_WARN("{}: {}", store_->options().dataset, text);
  }
}

bool Extractor::SleepFor(std::chrono::milliseconds d) {
  std::unique_lock<std::mutex> lock(mu_);
  sleep_cv_.wait_for(lock, d, [&] { return stopping(); });
  return !stopping();
}

// ---- the extraction thread --------------------------------------------------------------

void Extractor::Run() {
  auto backoff = options_.backoff_initial;
  while (!stopping()) {
    Status st = Step();
    if (stopping()) break;
    if (fatal_) {
      std::lock_guard<std::mutex> lock(error_mu_);
      st = fatal_status_;  // set by whichever thread met it
    }
    if (st.ok()) {
      consecutive_failures_ = 0;
      backoff = options_.backoff_initial;
      if (finished_.load()) {
        LOG_INFO("{}: reached stop_at block {}", store_->options().dataset, *options_.stop_at);
        break;
      }
      continue;
    }
    if (fatal_ || verify::VerificationFailureBlock(st)) {
      running_ = false;  // first: whoever sees failed() also sees it stopped
      failed_ = true;
      // Without the status detail: the message already says it all.
      const std::string text = Status(st.code(), st.message()).ToString();
      {
        std::lock_guard<std::mutex> lock(error_mu_);
        last_error_ = text;
      }
      LOG_ERROR("{}: extraction stopped: {}", store_->options().dataset, text);
      break;
    }
    RecordError(st);
    consecutive_failures_.fetch_add(1);
    if (!SleepFor(std::max(backoff, RetryAfter(st)))) break;
    backoff = std::min(backoff * 2, options_.backoff_max);
  }
  running_ = false;
}

arrow::Result<storage::BlockHeader> Extractor::FetchLatest() {
  ARROW_ASSIGN_OR_RAISE(auto raw,
                        CountRpc(client_->Call("eth_getBlockByNumber", "[\"latest\",false]")));
  if (IsNullResult(raw)) {
    return CountRpc(Status::IOError("eth_getBlockByNumber(latest) returned null"));
  }
  return CountRpc(DecodeBlockHeader(raw));
}

Status Extractor::Step() {
  if (!identity_checked_) {
    Status st = client_->EnsureChecked();
    if (fatal_) {
      failed_ = true;
      std::lock_guard<std::mutex> lock(error_mu_);
      st = fatal_status_;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (identity_state_ == IdentityState::kPending) {
        identity_state_ = IdentityState::kDone;
        identity_status_ = st;
      }
    }
    identity_cv_.notify_all();
    ARROW_RETURN_NOT_OK(st);
    identity_checked_ = true;
  }
  auto head = store_->head();
  stored_head_ = head ? head->number : kNone;
  if (options_.stop_at && head && head->number >= *options_.stop_at) {
    finished_ = true;
    return Status::OK();
  }
  ARROW_ASSIGN_OR_RAISE(auto latest, FetchLatest());
  const uint64_t node_head = latest.number;
  node_head_ = node_head;
  pacer_.Observe(Clock::now(), node_head);
  if (head && !verify_head_ && options_.finality_depth == 0 &&
      options_.finality == FinalityTag::kLatest &&
      latest.number == head->number && latest.hash != head->hash) {
    verify_head_ = true;  // same height, another block: a reorg
  }

  if (verify_head_ && head) {
    ARROW_RETURN_NOT_OK(VerifyStoredHead(node_head));
    if (verify_head_) return Status::OK();  // still waiting for the node
    head = store_->head();
  }

  const uint64_t next =
      head ? head->number + 1 : restart_from_.value_or(options_.start_block.value_or(0));
  if (node_head < options_.finality_depth) {
    SleepFor(options_.poll_interval);
    return Status::OK();
  }
  uint64_t target = node_head - options_.finality_depth;
  if (options_.finality != FinalityTag::kLatest) {
    ARROW_ASSIGN_OR_RAISE(
        auto raw, CountRpc(client_->Call("eth_getBlockByNumber", std::string("[\"") +
                                                                     TagName(options_.finality) +
                                                                     "\",false]")));
    if (IsNullResult(raw)) {
      SleepFor(options_.poll_interval);
      return Status::OK();
    }
    ARROW_ASSIGN_OR_RAISE(auto finalized, CountRpc(DecodeBlockHeader(raw)));
    target = std::min(target, finalized.number);
  }
  if (options_.stop_at) target = std::min(target, *options_.stop_at);
  if (next > target) {
    if (head && target >= head->number &&
        Clock::now() - last_head_check_ >= options_.head_recheck_interval) {
      // Caught up: make sure the stored head is still the node's (a reorg may
      // keep the height).
      last_head_check_ = Clock::now();
      verify_head_ = true;
      return Status::OK();
    }
    if (head && node_head < head->number && Clock::now() - last_behind_log_ >= kWarnInterval) {
      last_behind_log_ = Clock::now();
      LOG_WARN("{}: the node's head {} is below the stored head {}; waiting for it",
               store_->options().dataset, node_head, head->number);
    }
    SleepFor(pacer_.Delay(Clock::now()));
    return Status::OK();
  }
  if (target - next + 1 > options_.batch_blocks) return Backfill(next, target);
  return FollowHead(next, target);
}

Status Extractor::FollowHead(uint64_t first, uint64_t last) {
  auto fetched = FetchRange(client_.get(), decoder_.get(), first, last);
  auto head = store_->head();
  if (!fetched.ok()) {
    // A range that failed verification: store its verified blocks before stopping.
    const auto* failure = verify::AsVerificationFailure(fetched.status());
    if (failure && failure->verified() &&
        (!head || failure->verified()->headers.front().parent_hash == head->hash)) {
      std::vector<storage::BlockRangeData> pending{*failure->verified()};
      ARROW_RETURN_NOT_OK(Commit(&pending));
    }
    return fetched.status();
  }
  storage::BlockRangeData data = fetched.MoveValueUnsafe();
  if (head && data.headers.front().parent_hash != head->hash) {
    LOG_WARN("{}: block {} (parent {}) does not extend stored block {} ({})",
             store_->options().dataset, first, storage::HashToHex(data.headers.front().parent_hash),
             head->number, storage::HashToHex(head->hash));
    return HandleReorg();
  }
  std::vector<storage::BlockRangeData> pending;
  pending.push_back(std::move(data));
  return Commit(&pending);
}

void Extractor::AbortRound() {
  std::lock_guard<std::mutex> lock(mu_);
  ++generation_;
  jobs_.clear();
  results_.clear();
}

Status Extractor::Backfill(uint64_t first, uint64_t last) {
  uint64_t generation;
  {
    std::lock_guard<std::mutex> lock(mu_);
    generation = ++generation_;
    jobs_.clear();
    results_.clear();
  }
  const uint64_t batch = options_.batch_blocks;
  // Batches requested ahead of the next one to append: enough that the workers
  // keep fetching while a commit (Parquet + fsync) of commit_blocks blocks runs.
  const size_t window =
      options_.max_in_flight +
      std::max<size_t>(options_.max_in_flight, (options_.commit_blocks + batch - 1) / batch);
  uint64_t issue = first;   // first block not yet requested
  uint64_t expect = first;  // first block not yet received in order
  size_t outstanding = 0;
  std::vector<storage::BlockRangeData> pending;
  uint64_t pending_blocks = 0;
  auto last_commit = Clock::now();
  std::optional<storage::Hash32> prev;
  if (auto head = store_->head()) prev = head->hash;

  auto finish = [&](Status st) {
    Status committed = Commit(&pending);
    AbortRound();
    return st.ok() ? committed : st;
  };

  while (expect <= last) {
    std::optional<arrow::Result<storage::BlockRangeData>> result;
    {
      std::unique_lock<std::mutex> lock(mu_);
      bool issued = false;
      while (issue <= last && outstanding < window) {
        uint64_t end = std::min(last, issue + batch - 1);
        jobs_.push_back(Job{generation, issue, end});
        issue = end + 1;
        ++outstanding;
        issued = true;
      }
      if (issued) work_cv_.notify_all();
      const auto deadline = last_commit + options_.commit_interval;
      auto ready = [&] { return stopping() || results_.count(expect) > 0; };
      if (pending.empty()) {
        result_cv_.wait(lock, ready);
      } else {
        result_cv_.wait_until(lock, deadline, ready);
      }
      if (stopping()) break;
      auto it = results_.find(expect);
      if (it != results_.end()) {
        result = std::move(it->second);
        results_.erase(it);
        --outstanding;
      }
    }
    if (!result) {  // commit_interval passed while waiting: publish what is in order
      Status st = Commit(&pending);
      if (!st.ok()) return finish(st);
      last_commit = Clock::now();
      pending_blocks = 0;
      continue;
    }
    if (!result->ok()) {
      // A range that failed verification: store its verified blocks before stopping.
      const auto* failure = verify::AsVerificationFailure(result->status());
      if (failure && failure->verified() &&
          (!prev || failure->verified()->headers.front().parent_hash == *prev)) {
        pending.push_back(*failure->verified());
      }
      return finish(result->status());
    }
    storage::BlockRangeData data = result->MoveValueUnsafe();
    if (prev && data.headers.front().parent_hash != *prev) {
      LOG_WARN("{}: block {} does not extend block {}: the node's chain changed",
               store_->options().dataset, data.headers.front().number,
               data.headers.front().number - 1);
      ARROW_RETURN_NOT_OK(finish(Status::OK()));
      return HandleReorg();
    }
    prev = data.headers.back().hash;
    expect = data.headers.back().number + 1;
    pending_blocks += data.headers.size();
    pending.push_back(std::move(data));
    if (pending_blocks >= options_.commit_blocks ||
        Clock::now() - last_commit >= options_.commit_interval) {
      Status st = Commit(&pending);
      if (!st.ok()) return finish(st);
      last_commit = Clock::now();
      pending_blocks = 0;
    }
  }
  return finish(Status::OK());
}

Status Extractor::Commit(std::vector<storage::BlockRangeData>* pending) {
  if (pending->empty()) return Status::OK();
  storage::BlockRangeData merged;
  if (pending->size() == 1) {
    merged = std::move(pending->front());
  } else {
    size_t blocks = 0;
    for (const auto& p : *pending) blocks += p.headers.size();
    merged.headers.reserve(blocks);
    std::map<std::string, std::vector<std::shared_ptr<arrow::Table>>> parts;
    for (auto& p : *pending) {
      merged.headers.insert(merged.headers.end(), p.headers.begin(), p.headers.end());
      for (auto& [name, table] : p.tables) parts[name].push_back(std::move(table));
    }
    for (auto& [name, tables] : parts) {
      auto concatenated = arrow::ConcatenateTables(tables);
      if (!concatenated.ok()) {
        pending->clear();
        return concatenated.status();
      }
      merged.tables[name] = std::move(*concatenated);
    }
  }
  pending->clear();
  const uint64_t first = merged.headers.front().number;
  const uint64_t last = merged.headers.back().number;
  Status st = store_->Append(merged);
  if (!st.ok()) {
    return st.WithMessage("store: appending blocks ", first, "-", last, ": ", st.message());
  }
  stored_head_ = last;
  LOG_DEBUG("{}: stored blocks {}-{}", store_->options().dataset, first, last);
  return Status::OK();
}

// ---- backfill workers --------------------------------------------------------------------

void Extractor::WorkerLoop(NodeClient* client, EvmDecoder* decoder) {
  while (true) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, [&] { return stopping() || !jobs_.empty(); });
      if (stopping()) return;
      job = jobs_.front();
      jobs_.pop_front();
    }
    arrow::Result<storage::BlockRangeData> result;
    auto backoff = options_.backoff_initial;
    for (int attempt = 1;; ++attempt) {
      result = FetchRange(client, decoder, job.first, job.last);
      if (result.ok() || stopping()) break;
      if (verify::VerificationFailureBlock(result.status())) break;  // fatal: no retry
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (job.generation != generation_) break;  // the round was abandoned
      }
      if (attempt >= kWorkerAttempts) break;
      RecordError(result.status());
      if (!SleepFor(std::max(backoff, RetryAfter(result.status())))) break;
      backoff = std::min(backoff * 2, options_.backoff_max);
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (job.generation != generation_) continue;
      results_.insert_or_assign(job.first, std::move(result));
    }
    result_cv_.notify_all();
  }
}

}  // namespace sluice::ingest
