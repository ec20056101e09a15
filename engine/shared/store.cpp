// SharedStore: the connection, the schema and its migrations, the owners'
// leases, the rate-limit buckets and the run records. The registry of
// photos and the download claims are in registry.cpp.
#include <unistd.h>

#include <algorithm>
#include <array>

#include "shared/shared_impl.hpp"
#include "store/bucket_state.hpp"

namespace shotsync {

namespace {

using pg::Int;
using pg::Real;
using pg::Text;

// Forward migrations: migration i takes the schema from version i to i + 1.
// Names are bytea: a root-relative path need not be UTF-8.
constexpr std::array<const char*, kSharedSchemaVersion> kMigrations = {
    R"sql(
CREATE TABLE owners (
  token text PRIMARY KEY,
  host text NOT NULL,
  pid integer NOT NULL,
  command text NOT NULL,
  started_at timestamptz NOT NULL DEFAULT now(),
  lease_until timestamptz NOT NULL);
CREATE TABLE photos (
  album_id bigint NOT NULL,
  name bytea NOT NULL,
  photo_id bigint,
  hash text,
  size bigint,
  host text,
  updated_at timestamptz,
  claim_owner text,
  claim_host text,
  claim_kind text,
  claim_hash text,
  claim_size bigint,
  claim_watermark bigint,
  claimed_at timestamptz,
  PRIMARY KEY (album_id, name));
CREATE INDEX photos_claimed ON photos (claim_owner) WHERE claim_owner IS NOT NULL;
CREATE TABLE buckets (
  key text PRIMARY KEY,
  tokens double precision NOT NULL,
  refilled_at double precision NOT NULL,
  paused_until double precision NOT NULL DEFAULT 0);
CREATE TABLE downloads (
  dest_id text NOT NULL,
  remote_id text NOT NULL,
  path bytea NOT NULL,
  size bigint NOT NULL DEFAULT 0,
  state text NOT NULL,
  owner text,
  host text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (dest_id, remote_id));
CREATE TABLE album_index (
  album_id bigint PRIMARY KEY,
  listed_to bigint NOT NULL DEFAULT 0,
  name_mode text NOT NULL DEFAULT '',
  updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE album_photos (
  album_id bigint NOT NULL,
  photo_id bigint NOT NULL,
  name bytea NOT NULL,
  size bigint,
  approved boolean NOT NULL DEFAULT false,
  PRIMARY KEY (album_id, photo_id));
CREATE TABLE runs (
  id bigserial PRIMARY KEY,
  host text NOT NULL,
  pid integer NOT NULL,
  command text NOT NULL,
  started_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  uploaded bigint NOT NULL DEFAULT 0, revised bigint NOT NULL DEFAULT 0,
  skipped bigint NOT NULL DEFAULT 0, rejected bigint NOT NULL DEFAULT 0,
  failed bigint NOT NULL DEFAULT 0, downloaded bigint NOT NULL DEFAULT 0,
  bytes bigint NOT NULL DEFAULT 0,
  exit_code integer NOT NULL DEFAULT -1);
)sql",
};

// The schema version (0 = none): the meta table may not exist yet.
Result<int> ReadVersion(pg::Tx& tx) {
  SHOTSYNC_ASSIGN_OR_RETURN(pg::Rows exists, tx.Exec("SELECT to_regclass('shotsync_meta') IS NOT NULL"));
  if (!exists.Bool(0, 0)) return 0;
  SHOTSYNC_ASSIGN_OR_RETURN(pg::Rows rows,
                            tx.Exec("SELECT value::int FROM shotsync_meta WHERE key = 'schema_version'"));
  return rows.size() == 1 ? int(rows.Int(0, 0)) : 0;
}

std::string HostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || !buf[0]) return "localhost";
  return buf;
}

}  // namespace

SharedStore::SharedStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SharedStore::~SharedStore() = default;

Result<std::unique_ptr<SharedStore>> SharedStore::Open(const SharedOptions& options, bool check_schema) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->host = options.host.empty() ? HostName() : options.host;
  SHOTSYNC_ASSIGN_OR_RETURN(impl->db,
                            pg::Session::Connect(options.url, options.connect_timeout_s, options.retry_for_s));
  std::unique_ptr<SharedStore> store(new SharedStore(std::move(impl)));
  if (!check_schema) return store;
  SHOTSYNC_ASSIGN_OR_RETURN(int version, store->SchemaVersion());
  if (version < kSharedSchemaVersion) {
    return Status(Code::kUnsupported,
                  "shared store " + store->display() + ": " +
                      (version == 0 ? std::string("no shotsync schema")
                                    : "schema version " + std::to_string(version) + " is older than this shotsync's " +
                                          std::to_string(kSharedSchemaVersion)) +
                      "; run `shotsync shared init`");
  }
  if (version > kSharedSchemaVersion) {
    return Status(Code::kUnsupported, "shared store " + store->display() + ": schema version " +
                                          std::to_string(version) + " is newer than this shotsync (" +
                                          std::to_string(kSharedSchemaVersion) + "): upgrade shotsync on this host");
  }
  return store;
}

const std::string& SharedStore::display() const { return impl_->db->display(); }
const std::string& SharedStore::host() const { return impl_->host; }
double SharedStore::lease_s() const { return impl_->options.lease_s; }

Result<int> SharedStore::SchemaVersion() {
  int version = 0;
  SHOTSYNC_RETURN_IF_ERROR(impl_->db->Transact([&](pg::Tx& tx) -> Status {
    SHOTSYNC_ASSIGN_OR_RETURN(version, ReadVersion(tx));
    return Status::Ok();
  }));
  return version;
}

Result<int> SharedStore::Init() {
  int from = 0;
  SHOTSYNC_RETURN_IF_ERROR(impl_->db->Transact([&](pg::Tx& tx) -> Status {
    // Two hosts running `shared init` at once: the second waits, then finds
    // the schema current.
    SHOTSYNC_RETURN_IF_ERROR(tx.Exec("SELECT pg_advisory_xact_lock(5368537900)").status());
    SHOTSYNC_RETURN_IF_ERROR(
        tx.Exec("CREATE TABLE IF NOT EXISTS shotsync_meta (key text PRIMARY KEY, value text NOT NULL)").status());
    SHOTSYNC_ASSIGN_OR_RETURN(from, ReadVersion(tx));
    if (from > kSharedSchemaVersion) {
      return Status(Code::kUnsupported, "schema version " + std::to_string(from) +
                                            " is newer than this shotsync: upgrade shotsync on this host");
    }
    for (int v = from; v < kSharedSchemaVersion; ++v) {
      SHOTSYNC_RETURN_IF_ERROR(tx.Script(kMigrations[std::size_t(v)]));
    }
    return tx
        .Exec("INSERT INTO shotsync_meta(key, value) VALUES('schema_version', $1) "
              "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
              {Int(kSharedSchemaVersion)})
        .status();
  }));
  return from;
}

// --- Owners --------------------------------------------------------------

Status SharedStore::RegisterOwner(std::string_view token, int pid, std::string_view command) {
  {
    std::lock_guard lock(impl_->lease_mu);
    if (!impl_->lease_db) {
      SHOTSYNC_ASSIGN_OR_RETURN(impl_->lease_db, pg::Session::Connect(impl_->options.url, impl_->options.connect_timeout_s,
                                                                      impl_->options.retry_for_s));
    }
  }
  return impl_->db->Transact([&](pg::Tx& tx) -> Status {
    // Owners long dead are forgotten (a claim of a missing owner is a dead one's).
    SHOTSYNC_RETURN_IF_ERROR(tx.Exec("DELETE FROM owners WHERE lease_until < now() - interval '1 day'").status());
    return tx
        .Exec("INSERT INTO owners(token, host, pid, command, lease_until) "
              "VALUES($1, $2, $3, $4, clock_timestamp() + make_interval(secs => $5)) "
              "ON CONFLICT (token) DO UPDATE SET lease_until = excluded.lease_until",
              {Text(token), Text(impl_->host), Int(pid), Text(command), Real(impl_->options.lease_s)})
        .status();
  });
}

Status SharedStore::RenewOwner(std::string_view token) {
  pg::Session* db = nullptr;
  {
    std::lock_guard lock(impl_->lease_mu);
    db = impl_->lease_db ? impl_->lease_db.get() : impl_->db.get();
  }
  SHOTSYNC_ASSIGN_OR_RETURN(
      pg::Rows rows,
      db->Exec("UPDATE owners SET lease_until = clock_timestamp() + make_interval(secs => $2) "
               "WHERE token = $1 AND lease_until > clock_timestamp()",
               {Text(token), Real(impl_->options.lease_s)}));
  // Run out: other hosts may have taken its claims over already. It stays lost.
  if (rows.affected() == 0) return Status::NotFound("shared store " + display() + ": this process's lease ran out");
  return Status::Ok();
}

Status SharedStore::DropOwner(std::string_view token) {
  return impl_->db->Exec("DELETE FROM owners WHERE token = $1", {Text(token)}).status();
}

Result<bool> SharedStore::OwnerAlive(std::string_view token) {
  SHOTSYNC_ASSIGN_OR_RETURN(
      pg::Rows rows,
      impl_->db->Exec("SELECT lease_until > clock_timestamp() FROM owners WHERE token = $1", {Text(token)}));
  return rows.size() == 1 && rows.Bool(0, 0);
}

Result<std::vector<SharedOwner>> SharedStore::Owners() {
  SHOTSYNC_ASSIGN_OR_RETURN(
      pg::Rows rows,
      impl_->db->Exec("SELECT token, host, command, pid, extract(epoch from started_at), "
                      "extract(epoch from lease_until - clock_timestamp()) FROM owners ORDER BY started_at"));
  std::vector<SharedOwner> out;
  for (int i = 0; i < rows.size(); ++i) {
    out.push_back({rows.Text(i, 0), rows.Text(i, 1), rows.Text(i, 2), int(rows.Int(i, 3)), rows.Real(i, 4),
                   rows.Real(i, 5)});
  }
  return out;
}

// --- Buckets ---------------------------------------------------------------

Result<std::pair<int, double>> SharedStore::Reserve(std::string_view key, double rate_per_s, double burst,
                                                   int count, bool into_debt) {
  if (!(rate_per_s > 0) || count < 1) return Status::Invalid("token bucket: rate and count must be > 0");
  burst = std::max(burst, 1.0);
  std::pair<int, double> out{0, 0};
  SHOTSYNC_RETURN_IF_ERROR(impl_->db->Transact([&](pg::Tx& tx) -> Status {
    // A new bucket starts full. The row lock orders the hosts; the time is
    // read once the lock is held, on the database's clock.
    SHOTSYNC_RETURN_IF_ERROR(tx.Exec("INSERT INTO buckets(key, tokens, refilled_at) "
                                     "VALUES($1, $2, extract(epoch from clock_timestamp())) "
                                     "ON CONFLICT (key) DO NOTHING",
                                     {Text(key), Real(burst)})
                                 .status());
    SHOTSYNC_ASSIGN_OR_RETURN(
        pg::Rows row, tx.Exec("SELECT tokens, refilled_at, paused_until FROM buckets WHERE key = $1 FOR UPDATE",
                              {Text(key)}));
    SHOTSYNC_ASSIGN_OR_RETURN(pg::Rows now, tx.Exec("SELECT extract(epoch from clock_timestamp())"));
    if (row.size() != 1) return Status::Internal("bucket " + std::string(key) + " vanished");
    bucket::State b{row.Real(0, 0), row.Real(0, 1), row.Real(0, 2)};
    out = bucket::Take(b, rate_per_s, burst, count, into_debt, now.Real(0, 0));
    return tx
        .Exec("UPDATE buckets SET tokens = $2, refilled_at = $3, paused_until = $4 WHERE key = $1",
              {Text(key), Real(b.tokens), Real(b.refilled_at), Real(b.paused_until)})
        .status();
  }));
  return out;
}

Status SharedStore::Pause(std::string_view key, double for_s) {
  return impl_->db
      ->Exec("INSERT INTO buckets(key, tokens, refilled_at, paused_until) "
             "VALUES($1, 0, extract(epoch from clock_timestamp()), extract(epoch from clock_timestamp()) + $2) "
             "ON CONFLICT (key) DO UPDATE SET tokens = least(buckets.tokens, 0), "
             "paused_until = greatest(buckets.paused_until, excluded.paused_until)",
             {Text(key), Real(std::max(0.0, for_s))})
      .status();
}

Result<std::vector<Manifest::BucketRecord>> SharedStore::Buckets() {
  SHOTSYNC_ASSIGN_OR_RETURN(pg::Rows rows,
                            impl_->db->Exec("SELECT key, tokens, refilled_at, paused_until FROM buckets ORDER BY key"));
  std::vector<Manifest::BucketRecord> out;
  for (int i = 0; i < rows.size(); ++i) out.push_back({rows.Text(i, 0), rows.Real(i, 1), rows.Real(i, 2), rows.Real(i, 3)});
  return out;
}

Result<double> SharedBuckets::Take(std::string_view key, double rate, double burst, double) {
  SHOTSYNC_ASSIGN_OR_RETURN(auto got, store_.Reserve(key, rate, burst, 1, /*into_debt=*/false));
  return got.first == 1 ? 0.0 : got.second;
}

Result<std::pair<int, double>> SharedBuckets::Reserve(std::string_view key, double rate, double burst, int count,
                                                      double) {
  return store_.Reserve(key, rate, burst, count, /*into_debt=*/true);
}

Status SharedBuckets::Pause(std::string_view key, double until) {
  // The throttle's times are this host's; the store's are the database's.
  return store_.Pause(key, until - WallSeconds());
}

// --- Runs --------------------------------------------------------------------

Result<std::int64_t> SharedStore::BeginRun(std::string_view command, int pid) {
  SHOTSYNC_ASSIGN_OR_RETURN(pg::Rows rows,
                            impl_->db->Exec("INSERT INTO runs(host, pid, command) VALUES($1, $2, $3) RETURNING id",
                                            {Text(impl_->host), Int(pid), Text(command)}));
  return rows.Int(0, 0);
}

Status SharedStore::EndRun(std::int64_t run_id, const RunCounts& c, int exit_code) {
  return impl_->db
      ->Exec("UPDATE runs SET finished_at = now(), uploaded = $2, revised = $3, skipped = $4, rejected = $5, "
             "failed = $6, downloaded = $7, bytes = $8, exit_code = $9 WHERE id = $1",
             {Int(run_id), Int(c.uploaded), Int(c.revised), Int(c.skipped), Int(c.rejected), Int(c.failed),
              Int(c.downloaded), Int(std::int64_t(c.bytes)), Int(exit_code)})
      .status();
}

Result<std::vector<SharedRun>> SharedStore::RecentRuns(int limit) {
  SHOTSYNC_ASSIGN_OR_RETURN(
      pg::Rows rows,
      impl_->db->Exec("SELECT id, host, command, pid, extract(epoch from started_at)::bigint, "
                      "coalesce(extract(epoch from finished_at)::bigint, 0), uploaded, revised, skipped, rejected, "
                      "failed, downloaded, bytes, exit_code FROM runs ORDER BY id DESC LIMIT $1",
                      {Int(limit)}));
  std::vector<SharedRun> out;
  for (int i = 0; i < rows.size(); ++i) {
    SharedRun r;
    r.host = rows.Text(i, 1);
    r.run.id = rows.Int(i, 0);
    r.run.command = rows.Text(i, 2);
    r.run.pid = int(rows.Int(i, 3));
    r.run.started_at = rows.Int(i, 4);
    r.run.finished_at = rows.Int(i, 5);
    r.run.counts = {rows.Int(i, 6), rows.Int(i, 7), rows.Int(i, 8), rows.Int(i, 9), rows.Int(i, 10),
                    rows.Int(i, 11), std::uint64_t(rows.Int(i, 12))};
    r.run.exit_code = int(rows.Int(i, 13));
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace shotsync
