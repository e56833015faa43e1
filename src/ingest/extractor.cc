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
// Blocks per batch request while walking back to a reorg's common ancestor.
constexpr uint64_t kReorgWalkBatch = 32;
// At most one warning per this interval; the others are counted.
constexpr auto kWarnInterval = std::chrono::seconds(5);

std::string BlockParams(uint64_t n, bool full) {
  std::string p = "[\"" + FormatQuantity(n) + "\"";
  if (full) p += ",true";
  p += "]";
  return p;
}

std::string HeaderParams(uint64_t n) { return "[\"" + FormatQuantity(n) + "\",false]"; }

}  // namespace

Status ExtractorOptions::Validate() const {
  if (rpc_url.empty()) return Status::Invalid("extractor: rpc_url is empty");
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
  if (connect_timeout.count() <= 0 || request_timeout.count() <= 0) {
    return Status::Invalid("extractor: timeouts must be > 0");
  }
  if (stop_at && start_block && *stop_at < *start_block) {
    return Status::Invalid("extractor: stop_at ", *stop_at, " is below start_block ",
                           *start_block);
  }
  return Status::OK();
}

// ---- PollPacer ----------------------------------------------------------------------

PollPacer::PollPacer(std::chrono::milliseconds interval)
    : interval_(interval),
      fast_(std::max(std::chrono::milliseconds(1), interval / 10)) {}

void PollPacer::Reset() {
  head_.reset();
  intervals_.clear();
}

void PollPacer::Observe(Clock::time_point now, uint64_t head) {
  if (head_ && head == *head_) return;
  if (head_ && head == *head_ + 1) {
    // One new block: the time since the previous one is a block interval (as
    // seen through the polls).
    intervals_.push_back(now - head_seen_);
    if (intervals_.size() > kSamples) intervals_.pop_front();
  } else if (head_) {
    // Several blocks at once (backfill, a slow poll) or a lower head (a reorg,
    // another node): the intervals tell nothing; learn anew.
    intervals_.clear();
  }
  head_ = head;
  head_seen_ = now;
}

std::chrono::milliseconds PollPacer::Delay(Clock::time_point now) const {
  using std::chrono::ceil;
  using std::chrono::milliseconds;
  if (!head_ || intervals_.size() < kMinSamples) return interval_;
  const auto [lo_it, hi_it] = std::minmax_element(intervals_.begin(), intervals_.end());
  const Clock::duration slack = std::min<Clock::duration>(interval_, *lo_it / 10);
  const Clock::duration from = *lo_it - slack;
  const Clock::duration to = *hi_it + slack;
  const Clock::duration elapsed = now - head_seen_;
  if (elapsed >= to) return interval_;
  if (elapsed >= from) return fast_;
  // Before the window: the usual interval, but wake up at its start.
  return std::clamp(ceil<milliseconds>(from - elapsed), fast_, interval_);
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
  return std::unique_ptr<Extractor>(new Extractor(std::move(options), store));
}

Status Extractor::Start() {
  if (running_.load()) return Status::Invalid("extractor: already running");
  Stop();  // joins the workers of a previous run that ended on its own
  stopping_ = false;
  stop_source_ = std::make_unique<arrow::StopSource>();
  identity_checked_ = false;
  verify_head_ = true;
  fatal_ = false;
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

  RpcClientOptions copts;
  copts.url = options_.rpc_url;
  copts.connect_timeout = options_.connect_timeout;
  copts.request_timeout = options_.request_timeout;
  copts.stop_token = stop_source_->token();
  ARROW_ASSIGN_OR_RAISE(client_, RpcClient::Make(copts));
  ARROW_ASSIGN_OR_RAISE(decoder_, EvmDecoder::Make());
  worker_clients_.clear();
  worker_decoders_.clear();
  for (uint32_t i = 0; i < options_.max_in_flight; ++i) {
    ARROW_ASSIGN_OR_RAISE(auto c, RpcClient::Make(copts));
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
  LOG_INFO("{}: extracting from {} (stored head {})", store_->options().dataset,
           options_.rpc_url, head ? std::to_string(head->number) : std::string("none"));
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
    if (!SleepFor(backoff)) break;
    backoff = std::min(backoff * 2, options_.backoff_max);
  }
  running_ = false;
}

Status Extractor::CheckIdentity(RpcClient* client) {
  ARROW_ASSIGN_OR_RAISE(auto raw_chain, CountRpc(client->Call("eth_chainId")));
  auto chain_hex = UnquoteResult(raw_chain);
  arrow::Result<uint64_t> chain_id =
      chain_hex.ok() ? ParseQuantity(*chain_hex) : arrow::Result<uint64_t>(chain_hex.status());
  if (!chain_id.ok()) {
    return CountRpc(chain_id.status().WithMessage("eth_chainId: ", chain_id.status().message()));
  }
  ARROW_ASSIGN_OR_RAISE(auto raw_genesis,
                        CountRpc(client->Call("eth_getBlockByNumber", HeaderParams(0))));
  if (IsNullResult(raw_genesis)) {
    return CountRpc(Status::IOError("eth_getBlockByNumber(0x0): the node has no block 0"));
  }
  ARROW_ASSIGN_OR_RAISE(auto genesis, CountRpc(DecodeBlockHeader(raw_genesis)));
  storage::ChainIdentity id{*chain_id, genesis.hash};

  auto stored = store_->identity();
  if (stored && !(*stored == id)) {
    fatal_ = true;
    return Status::Invalid(
        "the node at ", options_.rpc_url, " serves chain id ", id.chain_id, " with genesis ",
        storage::HashToHex(id.genesis_hash), ", but data directory ",
        (store_->options().data_dir / store_->options().dataset).string(), " holds chain id ",
        stored->chain_id, " with genesis ", storage::HashToHex(stored->genesis_hash),
        "; refusing to mix chains. Use a different data directory for this chain, or point "
        "rpc_url at a node of chain id ",
        stored->chain_id, " with that genesis");
  }
  if (!stored) {
    ARROW_RETURN_NOT_OK(store_->SetIdentity(id));
    LOG_INFO("{}: chain id {}, genesis {}", store_->options().dataset, id.chain_id,
             storage::HashToHex(id.genesis_hash));
  }
  return Status::OK();
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
    Status st = CheckIdentity(client_.get());
    if (fatal_) failed_ = true;
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
  if (head && !verify_head_ && options_.finality_depth == 0 && !options_.finalized_only &&
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
  if (options_.finalized_only) {
    ARROW_ASSIGN_OR_RAISE(auto raw, CountRpc(client_->Call("eth_getBlockByNumber",
                                                           "[\"finalized\",false]")));
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

Status Extractor::VerifyStoredHead(uint64_t node_head) {
  auto head = store_->head();
  if (!head) {
    verify_head_ = false;
    return Status::OK();
  }
  if (node_head < head->number) {
    if (Clock::now() - last_behind_log_ >= kWarnInterval) {
      last_behind_log_ = Clock::now();
      LOG_WARN("{}: the node's head {} is below the stored head {}; waiting for it (nothing "
               "is deleted)",
               store_->options().dataset, node_head, head->number);
    }
    SleepFor(options_.poll_interval);
    return Status::OK();
  }
  ARROW_ASSIGN_OR_RAISE(auto raw, CountRpc(client_->Call("eth_getBlockByNumber",
                                                         HeaderParams(head->number))));
  if (IsNullResult(raw)) {
    SleepFor(options_.poll_interval);  // the node moved under us; ask again
    return Status::OK();
  }
  ARROW_ASSIGN_OR_RAISE(auto node, CountRpc(DecodeBlockHeader(raw)));
  if (node.hash == head->hash) {
    verify_head_ = false;
    return Status::OK();
  }
  LOG_WARN("{}: the node's block {} is {}, the stored one {}", store_->options().dataset,
           head->number, storage::HashToHex(node.hash), storage::HashToHex(head->hash));
  return HandleReorg();
}

arrow::Result<storage::BlockRangeData> Extractor::FetchRange(RpcClient* client,
                                                            EvmDecoder* decoder, uint64_t first,
                                                            uint64_t last) {
  std::vector<RpcRequest> requests;
  requests.reserve(2 * (last - first + 1));
  for (uint64_t n = first; n <= last; ++n) {
    requests.push_back({"eth_getBlockByNumber", BlockParams(n, true)});
    requests.push_back({"eth_getBlockReceipts", BlockParams(n, false)});
  }
  ARROW_ASSIGN_OR_RAISE(auto raws, CountRpc(client->CallBatch(requests)));
  decoder->Reset();
  for (uint64_t n = first; n <= last; ++n) {
    const size_t i = 2 * (n - first);
    if (IsNullResult(raws[i]) || IsNullResult(raws[i + 1])) {
      return CountRpc(Status::IOError("block ", n, " is not available from the node (",
                                      IsNullResult(raws[i]) ? "eth_getBlockByNumber"
                                                            : "eth_getBlockReceipts",
                                      " returned null)"));
    }
    ARROW_RETURN_NOT_OK(CountRpc(decoder->Append(raws[i], raws[i + 1])));
  }
  ARROW_ASSIGN_OR_RAISE(auto data, decoder->Finish());
  if (data.headers.front().number != first) {
    return CountRpc(Status::Invalid("eth_getBlockByNumber(", FormatQuantity(first),
                                    ") returned block ", data.headers.front().number));
  }
  if (options_.verify) {
    Status verified = verify::VerifyRange(data);
    if (!verified.ok()) {
      verification_failures_.fetch_add(1);
      const auto* failure = verify::AsVerificationFailure(verified);
      if (failure && failure->verified()) {
        verified_blocks_.fetch_add(failure->verified()->headers.size());
      }
      return verified;
    }
    verified_blocks_.fetch_add(data.headers.size());
  }
  return data;
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

Status Extractor::HandleReorg() {
  auto snap = store_->snapshot();
  if (!snap->range) return Status::OK();
  const uint64_t head = snap->range->end;
  const uint64_t first = snap->range->start;
  const uint64_t depth = options_.max_reorg_depth;
  const uint64_t lowest = std::max(first, head >= depth ? head - depth : 0);

  // Walk back from the stored head, comparing the node's hashes with the stored ones.
  std::optional<uint64_t> ancestor;
  for (uint64_t hi = head;;) {
    const uint64_t lo = std::max(lowest, hi >= kReorgWalkBatch - 1 ? hi - (kReorgWalkBatch - 1) : 0);
    std::vector<RpcRequest> requests;
    for (uint64_t n = lo; n <= hi; ++n) requests.push_back({"eth_getBlockByNumber", HeaderParams(n)});
    ARROW_ASSIGN_OR_RAISE(auto raws, CountRpc(client_->CallBatch(requests)));
    for (uint64_t n = hi + 1; n-- > lo;) {
      const std::string& raw = raws[n - lo];
      if (IsNullResult(raw)) continue;  // not on the node's chain (any more)
      ARROW_ASSIGN_OR_RAISE(auto node, CountRpc(DecodeBlockHeader(raw)));
      const storage::BlockHeader* stored = snap->Header(n);
      if (stored && node.hash == stored->hash) {
        ancestor = n;
        break;
      }
    }
    if (ancestor || lo == lowest) break;
    hi = lo - 1;
  }

  const std::string& dataset = store_->options().dataset;
  if (!ancestor) {
    if (lowest == first && head - first < depth && first > 0) {
      // Every stored block was replaced, within max_reorg_depth.
      LOG_WARN("{}: reorg: the node replaced every stored block {}-{}; removing them",
               dataset, first, head);
      ARROW_RETURN_NOT_OK(store_->TruncateAfter(first - 1));
      restart_from_ = first;
      reorgs_.fetch_add(1);
      stored_head_ = kNone;
      verify_head_ = false;
      return Status::OK();
    }
    fatal_ = true;
    return Status::Invalid("reorg deeper than max_reorg_depth=", depth, ": the node's blocks ",
                           lowest, "-", head, " all differ from the stored ones; stopped "
                           "extracting dataset ", dataset,
                           ". Re-extract into a new data directory, or raise max_reorg_depth");
  }
  verify_head_ = false;
  if (*ancestor == head) return Status::OK();  // the node changed between calls; fetch again
  LOG_WARN("{}: reorg: the node replaced blocks {}-{}; common ancestor {} ({} blocks deep)",
           dataset, *ancestor + 1, head, *ancestor, head - *ancestor);
  ARROW_RETURN_NOT_OK(store_->TruncateAfter(*ancestor));
  reorgs_.fetch_add(1);
  stored_head_ = *ancestor;
  return Status::OK();
}

// ---- backfill workers --------------------------------------------------------------------

void Extractor::WorkerLoop(RpcClient* client, EvmDecoder* decoder) {
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
      if (!SleepFor(backoff)) break;
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
