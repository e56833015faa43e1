#include "storage/pg_metadata.h"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>

#include "common/hex.h"
#include "common/limits.h"
#include "common/log.h"
#include "fmt/format.h"

using arrow::Result;
using arrow::Status;

namespace sluice::storage {

namespace {

constexpr const char* kChannel = "sluice_commits";

std::string Hex(const Hash32& h) {
  std::string s = HashToHex(h);
  return s.rfind("0x", 0) == 0 ? s.substr(2) : s;
}

Result<Hash32> HashOf(const std::string& bytes) {
  if (bytes.size() != 32) return Status::IOError("PostgreSQL: a stored hash is not 32 bytes");
  Hash32 h;
  std::memcpy(h.data(), bytes.data(), 32);
  return h;
}

std::string Num(uint64_t v) { return std::to_string(v); }

// The header in columns number, hash, parent_hash, timestamp of `row`, from `col` on.
Result<BlockHeader> HeaderAt(const pg::Result& r, int row, int col) {
  BlockHeader h;
  h.number = static_cast<uint64_t>(r.Int(row, col));
  ARROW_ASSIGN_OR_RAISE(h.hash, HashOf(r.Bytes(row, col + 1)));
  ARROW_ASSIGN_OR_RAISE(h.parent_hash, HashOf(r.Bytes(row, col + 2)));
  h.timestamp = r.Int(row, col + 3);
  return h;
}

}  // namespace

Result<std::shared_ptr<PgMetadata>> PgMetadata::Connect(PgMetadataOptions options, bool writer) {
  if (options.url.empty()) return Status::Invalid("postgres_url is empty");
  ARROW_RETURN_NOT_OK(MigratePostgres(options.url, options.connect_timeout).status());
  std::shared_ptr<PgMetadata> meta(new PgMetadata(std::move(options), writer));
  ARROW_ASSIGN_OR_RAISE(meta->conn_, pg::Connection::Open(meta->options_.url,
                                                          meta->options_.connect_timeout));
  return meta;
}

PgMetadata::~PgMetadata() { StopWatching(); }

std::string PgMetadata::Describe() const {
  // The URL without its password.
  std::string url = options_.url;
  auto at = url.find('@');
  auto scheme = url.find("://");
  if (at != std::string::npos && scheme != std::string::npos) {
    auto colon = url.find(':', scheme + 3);
    if (colon != std::string::npos && colon < at) url = url.substr(0, colon) + url.substr(at);
  }
  return "PostgreSQL " + url + " (dataset " + options_.dataset + ")";
}

Result<pg::Connection*> PgMetadata::Conn() {
  if (conn_ && conn_->ok()) return conn_.get();
  if (writer_) {
    return Status::IOError("PostgreSQL: the writer's connection (holding the lease) is lost");
  }
  conn_.reset();
  ARROW_ASSIGN_OR_RAISE(conn_, pg::Connection::Open(options_.url, options_.connect_timeout));
  return conn_.get();
}

Result<pg::Result> PgMetadata::Exec(pg::Connection* conn, const std::string& sql,
                                    const std::vector<pg::Param>& params) {
  statements_.fetch_add(1);
  return conn->Exec(sql, params);
}

Result<bool> PgMetadata::TryAcquireLease() {
  std::lock_guard<std::mutex> lock(mu_);
  ARROW_ASSIGN_OR_RAISE(auto* conn, Conn());
  ARROW_ASSIGN_OR_RAISE(
      auto res, Exec(conn, "SELECT pg_try_advisory_lock(hashtext('sluice.extract'), hashtext($1))",
                     {options_.dataset}));
  return res.Text(0, 0) == "t";
}

Status PgMetadata::CheckLease() {
  std::lock_guard<std::mutex> lock(mu_);
  ARROW_ASSIGN_OR_RAISE(auto* conn, Conn());
  return Exec(conn, "SELECT 1").status();
}

Status PgMetadata::CheckTables(const std::vector<TableDef>& tables) {
  std::lock_guard<std::mutex> lock(mu_);
  ARROW_ASSIGN_OR_RAISE(auto* conn, Conn());
  ARROW_RETURN_NOT_OK(Exec(conn, "INSERT INTO sluice_datasets (name, network) VALUES ($1, $2) "
                                 "ON CONFLICT (name) DO NOTHING",
                           {options_.dataset, options_.network})
                          .status());
  ARROW_ASSIGN_OR_RAISE(auto ds, Exec(conn, "SELECT network FROM sluice_datasets WHERE name = $1",
                                      {options_.dataset}));
  if (ds.rows() == 1 && ds.Text(0, 0) != options_.network) {
    return Status::Invalid("dataset ", options_.dataset, " in ", Describe(), " is of network '",
                           ds.Text(0, 0), "', not '", options_.network, "'");
  }
  for (const auto& t : tables) {
    const std::string schema = t.schema->ToString(/*show_metadata=*/false);
    ARROW_RETURN_NOT_OK(Exec(conn, "INSERT INTO sluice_tables (dataset, name, arrow_schema) "
                                   "VALUES ($1, $2, $3) ON CONFLICT (dataset, name) DO NOTHING",
                             {options_.dataset, t.name, schema})
                            .status());
    ARROW_ASSIGN_OR_RAISE(auto res, Exec(conn, "SELECT arrow_schema FROM sluice_tables "
                                               "WHERE dataset = $1 AND name = $2",
                                         {options_.dataset, t.name}));
    if (res.rows() != 1 || res.Text(0, 0) != schema) {
      return Status::Invalid("stored table ", options_.dataset, ".", t.name, " in ", Describe(),
                             " has a different schema than this version of sluice writes; use "
                             "a new database or dataset. stored: ",
                             res.rows() ? res.Text(0, 0) : "(none)", " expected: ", schema);
    }
  }
  return Status::OK();
}

Status PgMetadata::ReadState(pg::Connection* conn, std::optional<uint64_t> headers_from,
                             uint64_t replaced_seen, MetadataState* state) {
  ARROW_ASSIGN_OR_RAISE(
      auto segs, Exec(conn,
                      "SELECT s.seq, s.first_block, s.last_block, f.table_name, f.object, f.rows, "
                      "f.bytes FROM sluice_segments s LEFT JOIN sluice_segment_files f "
                      "ON f.dataset = s.dataset AND f.seq = s.seq WHERE s.dataset = $1 "
                      "ORDER BY s.first_block, s.seq, f.table_name",
                      {options_.dataset}));
  for (int i = 0; i < segs.rows(); ++i) {
    const auto seq = static_cast<uint64_t>(segs.Int(i, 0));
    if (state->segments.empty() || state->segments.back().seq != seq) {
      SegmentRecord rec;
      rec.seq = seq;
      rec.range = {static_cast<uint64_t>(segs.Int(i, 1)), static_cast<uint64_t>(segs.Int(i, 2))};
      state->segments.push_back(std::move(rec));
    }
    if (segs.IsNull(i, 3)) continue;
    state->segments.back().files[segs.Text(i, 3)] =
        FileRecord{segs.Text(i, 4), segs.Int(i, 5), segs.Int(i, 6)};
  }
  ARROW_ASSIGN_OR_RAISE(
      auto hdrs, Exec(conn,
                      "SELECT number, hash, parent_hash, timestamp FROM sluice_block_headers "
                      "WHERE dataset = $1 AND number > $2 ORDER BY number",
                      {options_.dataset, headers_from ? Num(*headers_from) : std::string("-1")}));
  std::vector<BlockHeader> headers;
  headers.reserve(hdrs.rows());
  for (int i = 0; i < hdrs.rows(); ++i) {
    ARROW_ASSIGN_OR_RAISE(auto h, HeaderAt(hdrs, i, 0));
    headers.push_back(h);
  }
  state->headers = std::move(headers);
  ARROW_ASSIGN_OR_RAISE(
      auto rep, Exec(conn,
                     "SELECT id, number, hash, parent_hash, timestamp FROM sluice_replaced_blocks "
                     "WHERE dataset = $1 AND id > $2 ORDER BY id",
                     {options_.dataset, Num(replaced_seen)}));
  state->replaced_seen = replaced_seen;
  for (int i = 0; i < rep.rows(); ++i) {
    ARROW_ASSIGN_OR_RAISE(auto h, HeaderAt(rep, i, 1));
    state->replaced.push_back(h);
    state->replaced_seen = static_cast<uint64_t>(rep.Int(i, 0));
  }
  return Status::OK();
}

namespace {
// Reads the dataset row into `state`; false when the dataset is not there.
Result<bool> ReadDatasetRow(pg::Connection* conn, const std::string& dataset,
                            MetadataState* state) {
  ARROW_ASSIGN_OR_RAISE(auto row, conn->Exec("SELECT version, next_seq, chain_id::text, "
                                             "genesis_hash FROM sluice_datasets WHERE name = $1",
                                             {dataset}));
  if (row.rows() == 0) return false;
  state->version = static_cast<uint64_t>(row.Int(0, 0));
  state->next_seq = static_cast<uint64_t>(row.Int(0, 1));
  if (!row.IsNull(0, 2) && !row.IsNull(0, 3)) {
    ChainIdentity id;
    id.chain_id = std::stoull(row.Text(0, 2));
    ARROW_ASSIGN_OR_RAISE(id.genesis_hash, HashOf(row.Bytes(0, 3)));
    state->identity = id;
  }
  return true;
}
}  // namespace

Result<MetadataState> PgMetadata::Load() {
  std::lock_guard<std::mutex> lock(mu_);
  ARROW_ASSIGN_OR_RAISE(auto* conn, Conn());
  ARROW_RETURN_NOT_OK(Exec(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").status());
  pg::Transaction tx(conn);
  MetadataState state;
  ARROW_ASSIGN_OR_RAISE(bool exists, ReadDatasetRow(conn, options_.dataset, &state));
  if (exists) ARROW_RETURN_NOT_OK(ReadState(conn, std::nullopt, 0, &state));
  ARROW_RETURN_NOT_OK(Exec(conn, "COMMIT").status());
  tx.Done();
  if (!state.headers) state.headers.emplace();
  return state;
}

Result<std::optional<MetadataState>> PgMetadata::Changes(uint64_t version,
                                                         std::optional<uint64_t> head,
                                                         uint64_t replaced_seen) {
  std::lock_guard<std::mutex> lock(mu_);
  ARROW_ASSIGN_OR_RAISE(auto* conn, Conn());
  ARROW_RETURN_NOT_OK(Exec(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").status());
  pg::Transaction tx(conn);
  MetadataState state;
  ARROW_ASSIGN_OR_RAISE(bool exists, ReadDatasetRow(conn, options_.dataset, &state));
  if (!exists || state.version == version) return std::nullopt;
  // What the commits since `version` truncated: the reader drops its headers
  // above that, and takes the ones above from here.
  ARROW_ASSIGN_OR_RAISE(auto log, Exec(conn,
                                       "SELECT count(*), min(truncated_after) FROM sluice_commits "
                                       "WHERE dataset = $1 AND version > $2",
                                       {options_.dataset, Num(version)}));
  const bool complete = state.version > version &&
                        static_cast<uint64_t>(log.Int(0, 0)) == state.version - version;
  std::optional<uint64_t> from;
  if (!complete) {
    state.full = true;
    replaced_seen = 0;
  } else if (head) {
    from = *head;
    if (!log.IsNull(0, 1)) from = std::min<uint64_t>(*from, static_cast<uint64_t>(log.Int(0, 1)));
    state.headers_after = from;
  }
  ARROW_RETURN_NOT_OK(ReadState(conn, from, replaced_seen, &state));
  ARROW_RETURN_NOT_OK(Exec(conn, "COMMIT").status());
  tx.Done();
  return state;
}

Status PgMetadata::SetIdentity(const ChainIdentity& identity) {
  std::lock_guard<std::mutex> lock(mu_);
  ARROW_ASSIGN_OR_RAISE(auto* conn, Conn());
  return Exec(conn,
              "UPDATE sluice_datasets SET chain_id = $2::numeric, "
              "genesis_hash = decode($3, 'hex'), updated_at = now() WHERE name = $1",
              {options_.dataset, Num(identity.chain_id), Hex(identity.genesis_hash)})
      .status();
}

Status PgMetadata::Commit(const CommitRecord& c) {
  std::lock_guard<std::mutex> lock(mu_);
  ARROW_ASSIGN_OR_RAISE(auto* conn, Conn());
  ARROW_RETURN_NOT_OK(Exec(conn, "BEGIN").status());
  pg::Transaction tx(conn);
  const std::string& ds = options_.dataset;
  ARROW_ASSIGN_OR_RAISE(auto row, Exec(conn,
                                       "SELECT version FROM sluice_datasets WHERE name = $1 "
                                       "FOR UPDATE",
                                       {ds}));
  if (row.rows() != 1) return Status::Invalid("PostgreSQL: dataset ", ds, " is not registered");
  if (static_cast<uint64_t>(row.Int(0, 0)) != c.base_version) {
    return Status::Invalid("PostgreSQL: dataset ", ds, " moved on to version ", row.Int(0, 0),
                           " while this writer was at ", c.base_version,
                           " (another writer published); this writer's state is stale");
  }
  ARROW_RETURN_NOT_OK(Exec(conn,
                           "UPDATE sluice_datasets SET version = $2, next_seq = $3, "
                           "updated_at = now() WHERE name = $1",
                           {ds, Num(c.version), Num(c.next_seq)})
                          .status());
  if (!c.removed.empty()) {
    std::vector<std::string> seqs;
    for (auto s : c.removed) seqs.push_back(Num(s));
    ARROW_RETURN_NOT_OK(Exec(conn,
                             "DELETE FROM sluice_segments WHERE dataset = $1 "
                             "AND seq = ANY($2::bigint[])",
                             {ds, pg::ArrayLiteral(seqs)})
                            .status());
  }
  if (!c.added.empty()) {
    std::vector<std::string> seqs, firsts, lasts, fseqs, tables, objects, rows, bytes;
    for (const auto& s : c.added) {
      seqs.push_back(Num(s.seq));
      firsts.push_back(Num(s.range.start));
      lasts.push_back(Num(s.range.end));
      for (const auto& [t, f] : s.files) {
        fseqs.push_back(Num(s.seq));
        tables.push_back(t);
        objects.push_back(f.object);
        rows.push_back(std::to_string(f.rows));
        bytes.push_back(std::to_string(f.bytes));
      }
    }
    ARROW_RETURN_NOT_OK(Exec(conn,
                             "INSERT INTO sluice_segments (dataset, seq, first_block, last_block) "
                             "SELECT $1, * FROM unnest($2::bigint[], $3::bigint[], $4::bigint[])",
                             {ds, pg::ArrayLiteral(seqs), pg::ArrayLiteral(firsts),
                              pg::ArrayLiteral(lasts)})
                            .status());
    if (!fseqs.empty()) {
      ARROW_RETURN_NOT_OK(
          Exec(conn,
               "INSERT INTO sluice_segment_files (dataset, seq, table_name, object, rows, bytes) "
               "SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::text[], $5::bigint[], "
               "$6::bigint[])",
               {ds, pg::ArrayLiteral(fseqs), pg::QuotedArrayLiteral(tables),
                pg::QuotedArrayLiteral(objects), pg::ArrayLiteral(rows), pg::ArrayLiteral(bytes)})
              .status());
    }
  }
  if (c.truncate_after) {
    ARROW_RETURN_NOT_OK(Exec(conn,
                             "DELETE FROM sluice_block_headers WHERE dataset = $1 AND number > $2",
                             {ds, Num(*c.truncate_after)})
                            .status());
  }
  auto header_arrays = [](const std::vector<BlockHeader>& hs) {
    std::vector<std::string> n, h, p, t;
    for (const auto& x : hs) {
      n.push_back(Num(x.number));
      h.push_back(Hex(x.hash));
      p.push_back(Hex(x.parent_hash));
      t.push_back(std::to_string(x.timestamp));
    }
    return std::vector<pg::Param>{pg::ArrayLiteral(n), pg::ArrayLiteral(h), pg::ArrayLiteral(p),
                                  pg::ArrayLiteral(t)};
  };
  if (!c.appended.empty()) {
    auto a = header_arrays(c.appended);
    ARROW_RETURN_NOT_OK(
        Exec(conn,
             "INSERT INTO sluice_block_headers (dataset, number, hash, parent_hash, timestamp) "
             "SELECT $1, n, decode(h, 'hex'), decode(p, 'hex'), t FROM "
             "unnest($2::bigint[], $3::text[], $4::text[], $5::bigint[]) AS u(n, h, p, t)",
             {ds, a[0], a[1], a[2], a[3]})
            .status());
  }
  if (!c.replaced.empty()) {
    auto a = header_arrays(c.replaced);
    ARROW_RETURN_NOT_OK(
        Exec(conn,
             "INSERT INTO sluice_replaced_blocks "
             "(dataset, number, hash, parent_hash, timestamp, version) "
             "SELECT $1, n, decode(h, 'hex'), decode(p, 'hex'), t, $6 FROM "
             "unnest($2::bigint[], $3::text[], $4::text[], $5::bigint[]) AS u(n, h, p, t)",
             {ds, a[0], a[1], a[2], a[3], Num(c.version)})
            .status());
    ARROW_RETURN_NOT_OK(
        Exec(conn,
             "DELETE FROM sluice_replaced_blocks WHERE dataset = $1 AND id <= "
             "(SELECT id FROM sluice_replaced_blocks WHERE dataset = $1 "
             "ORDER BY id DESC OFFSET $2 LIMIT 1)",
             {ds, Num(options_.replaced_log_blocks)})
            .status());
  }
  if (!c.retired.empty()) {
    ARROW_RETURN_NOT_OK(Exec(conn,
                             "INSERT INTO sluice_retired_objects (dataset, object, version) "
                             "SELECT $1, o, $3 FROM unnest($2::text[]) AS o "
                             "ON CONFLICT (dataset, object) DO NOTHING",
                             {ds, pg::QuotedArrayLiteral(c.retired), Num(c.version)})
                            .status());
  }
  ARROW_RETURN_NOT_OK(Exec(conn,
                           "INSERT INTO sluice_commits (dataset, version, truncated_after) "
                           "VALUES ($1, $2, $3)",
                           {ds, Num(c.version),
                            c.truncate_after ? pg::Param(Num(*c.truncate_after)) : std::nullopt})
                          .status());
  if (c.version % 1000 == 0 && c.version > options_.commit_log_versions) {
    ARROW_RETURN_NOT_OK(Exec(conn, "DELETE FROM sluice_commits WHERE dataset = $1 AND version <= $2",
                             {ds, Num(c.version - options_.commit_log_versions)})
                            .status());
  }
  // Delivered to listeners when (and only if) the transaction commits.
  ARROW_RETURN_NOT_OK(
      Exec(conn, "SELECT pg_notify($1, $2)", {std::string(kChannel), ds + ":" + Num(c.version)})
          .status());
  if (options_.testing_commit_pause.count() > 0) {
    LOG_WARN("{}: commit of version {} paused for {} ms (testing_commit_pause_ms)", ds, c.version,
             options_.testing_commit_pause.count());
    std::this_thread::sleep_for(options_.testing_commit_pause);
  }
  ARROW_RETURN_NOT_OK(Exec(conn, "COMMIT").status());
  tx.Done();
  return Status::OK();
}

Result<MetadataStore::Retired> PgMetadata::RetiredObjects(std::chrono::seconds grace) {
  std::lock_guard<std::mutex> lock(mu_);
  ARROW_ASSIGN_OR_RAISE(auto* conn, Conn());
  Retired out;
  ARROW_ASSIGN_OR_RAISE(auto expired,
                        Exec(conn,
                             "SELECT object FROM sluice_retired_objects WHERE dataset = $1 "
                             "AND retired_at < now() - make_interval(secs => $2)",
                             {options_.dataset, std::to_string(grace.count())}));
  for (int i = 0; i < expired.rows(); ++i) out.expired.push_back(expired.Text(i, 0));
  ARROW_ASSIGN_OR_RAISE(auto keep,
                        Exec(conn,
                             "SELECT object FROM sluice_segment_files WHERE dataset = $1 "
                             "UNION ALL SELECT object FROM sluice_retired_objects "
                             "WHERE dataset = $1 AND retired_at >= now() - make_interval(secs => $2)",
                             {options_.dataset, std::to_string(grace.count())}));
  for (int i = 0; i < keep.rows(); ++i) out.keep.push_back(keep.Text(i, 0));
  return out;
}

Status PgMetadata::ForgetRetired(const std::vector<std::string>& objects) {
  if (objects.empty()) return Status::OK();
  std::lock_guard<std::mutex> lock(mu_);
  ARROW_ASSIGN_OR_RAISE(auto* conn, Conn());
  return Exec(conn,
              "DELETE FROM sluice_retired_objects WHERE dataset = $1 AND object = ANY($2::text[])",
              {options_.dataset, pg::QuotedArrayLiteral(objects)})
      .status();
}

// ---- the listener -------------------------------------------------------------------

Status PgMetadata::Watch(std::function<Status()> on_change,
                         std::function<void(const Status&)> on_state) {
  if (listener_.joinable()) return Status::Invalid("PgMetadata: already watching");
  if (::pipe(wake_pipe_) != 0) return Status::IOError("pipe: ", strerror(errno));
  listener_ = std::thread([this, on_change = std::move(on_change),
                           on_state = std::move(on_state)] { ListenLoop(on_change, on_state); });
  return Status::OK();
}

void PgMetadata::StopWatching() {
  {
    std::lock_guard<std::mutex> lock(stop_mu_);
    if (stop_) return;
    stop_ = true;
  }
  stop_cv_.notify_all();
  if (wake_pipe_[1] >= 0) ARROW_UNUSED(::write(wake_pipe_[1], "x", 1));
  if (listener_.joinable()) listener_.join();
  for (int& fd : wake_pipe_) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
}

bool PgMetadata::SleepUnlessStopping(std::chrono::milliseconds d) {
  std::unique_lock<std::mutex> lock(stop_mu_);
  stop_cv_.wait_for(lock, d, [&] { return stop_; });
  return !stop_;
}

void PgMetadata::ListenLoop(std::function<Status()> on_change,
                            std::function<void(const Status&)> on_state) {
  auto backoff = options_.reconnect_initial;
  bool was_lost = false;
  const std::string prefix = options_.dataset + ":";
  while (true) {
    {
      std::lock_guard<std::mutex> lock(stop_mu_);
      if (stop_) return;
    }
    auto conn = pg::Connection::Open(options_.url, options_.connect_timeout);
    Status st = conn.status();
    if (st.ok()) st = (*conn)->Exec(std::string("LISTEN ") + kChannel).status();
    if (st.ok()) {
      // Listening: catch up with what was published while not, then follow.
      st = on_change();
    }
    if (st.ok()) {
      if (was_lost) LOG_INFO("{}: PostgreSQL connection back", options_.dataset);
      on_state(Status::OK());
      was_lost = false;
      backoff = options_.reconnect_initial;
      auto& c = *conn;
      while (st.ok()) {
        pollfd fds[2] = {{c->socket(), POLLIN, 0}, {wake_pipe_[0], POLLIN, 0}};
        int n = ::poll(fds, 2, -1);
        if (n < 0 && errno != EINTR) {
          st = Status::IOError("poll: ", strerror(errno));
          break;
        }
        if (fds[1].revents) return;  // stopping
        if (!(fds[0].revents)) continue;
        auto notes = c->Notifications();
        if (!notes.ok()) {
          st = notes.status();
          break;
        }
        bool mine = false;
        for (const auto& [channel, payload] : *notes) mine |= payload.rfind(prefix, 0) == 0;
        if (mine) {
          Status refreshed = on_change();
          if (!refreshed.ok()) {
            LOG_WARN("{}: cannot catch up: {}", options_.dataset, refreshed.ToString());
          }
        }
      }
    }
    // Lost (or never had) the connection: queries must not trust the snapshot.
    if (!was_lost) {
      LOG_WARN("{}: PostgreSQL unreachable, reconnecting: {}", options_.dataset, st.ToString());
    }
    on_state(common::LimitStatus(common::LimitKind::kUnavailable,
                                 "metadata store unreachable (" + Describe() +
                                     "): " + st.message() + "; retry shortly"));
    was_lost = true;
    if (!SleepUnlessStopping(backoff)) return;
    backoff = std::min(backoff * 2, options_.reconnect_max);
  }
}

}  // namespace sluice::storage
