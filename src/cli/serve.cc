#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>

#include "arrow/flight/server.h"
#include "cli/commands.h"
#include "cli/roles.h"
#include "common/auth.h"
#include "common/config.h"
#include "common/limits.h"
#include "common/log.h"
#include "flight/auth.h"
#include "flight/endpoints.h"
#include "flight/service.h"
#include "http/admin_server.h"
#include "http/jsonl_server.h"
#include "ingest/eth_call.h"
#include "ingest/extractor.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "sql/engine.h"
#include "storage/block_store.h"

namespace sluice::cli {

namespace {

arrow::Result<std::pair<std::string, int>> SplitHostPort(const std::string& addr) {
  auto colon = addr.rfind(':');
  if (colon == std::string::npos) {
    return arrow::Status::Invalid("address '", addr, "' must be host:port");
  }
  try {
    return std::make_pair(addr.substr(0, colon), std::stoi(addr.substr(colon + 1)));
  } catch (const std::exception&) {
    return arrow::Status::Invalid("address '", addr, "' has no valid port");
  }
}

arrow::Result<std::string> ReadPemFile(const char* setting, const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  if (!f || ss.str().empty()) {
    return arrow::Status::IOError("setting ", setting, ": cannot read ", path);
  }
  return ss.str();
}

// Checked here, so that a wrong file gets a message naming it rather than gRPC's.
arrow::Status CheckCertificateAndKey(const Config& config, const std::string& cert_pem,
                                     const std::string& key_pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> cert_bio(
      BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())), BIO_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(
      PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr), X509_free);
  if (!cert) {
    return arrow::Status::Invalid("setting tls_cert_file: ", config.tls_cert_file,
                                  " holds no PEM certificate");
  }
  std::unique_ptr<BIO, decltype(&BIO_free)> key_bio(
      BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())), BIO_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr), EVP_PKEY_free);
  if (!key) {
    return arrow::Status::Invalid("setting tls_key_file: ", config.tls_key_file,
                                  " holds no unencrypted PEM private key");
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    return arrow::Status::Invalid("settings tls_cert_file and tls_key_file: the key ",
                                  config.tls_key_file, " does not belong to the certificate ",
                                  config.tls_cert_file);
  }
  return arrow::Status::OK();
}

// The API keys of every source (common/auth.h), never logged.
arrow::Result<std::shared_ptr<common::Authenticator>> MakeAuthenticator(const Config& config) {
  common::AuthOptions options;
  options.api_keys = config.api_keys;
  if (!config.api_keys_file.empty()) {
    ARROW_ASSIGN_OR_RAISE(auto keys, common::ReadApiKeyFile(config.api_keys_file));
    if (keys.empty()) {
      return arrow::Status::Invalid("api_keys_file ", config.api_keys_file, " holds no key");
    }
    options.api_keys.insert(options.api_keys.end(), keys.begin(), keys.end());
  }
  options.token_ttl = std::chrono::seconds(config.auth_token_ttl_secs);
  options.secret_hex = config.ticket_secret;
  return common::Authenticator::Make(std::move(options));
}

// Start every extractor; their start checks (each waiting up to its
// start_timeout for its node) run side by side. A refusal (another chain, an
// unknown finality tag) stops the server with the dataset's name; an unreachable
// node does not.
arrow::Status StartExtractors(const std::vector<DatasetConfig>& datasets,
                              std::vector<std::unique_ptr<ingest::Extractor>>& extractors) {
  std::vector<arrow::Status> results(extractors.size());
  std::vector<std::thread> starts;
  for (size_t i = 0; i < extractors.size(); ++i) {
    if (!extractors[i]) continue;
    starts.emplace_back([&, i] { results[i] = extractors[i]->Start(); });
  }
  for (auto& t : starts) t.join();
  for (size_t i = 0; i < extractors.size(); ++i) {
    if (!results[i].ok()) {
      for (auto& ex : extractors) {
        if (ex) ex->Stop();
      }
      return results[i].WithMessage("dataset ", datasets[i].dataset, ": ",
                                    results[i].message());
    }
  }
  return arrow::Status::OK();
}

http::ExtractionStatus ExtractionStatusOf(const ingest::Extractor& ex) {
  http::ExtractionStatus s;
  s.running = ex.running();
  s.failed = ex.failed();
  s.node_head = ex.node_head();
  s.last_error = ex.last_error();
  s.rpc_errors = ex.rpc_errors();
  s.reorgs = ex.reorgs();
  s.consecutive_failures = ex.consecutive_failures();
  s.verified_blocks = ex.verified_blocks();
  s.verification_failures = ex.verification_failures();
  s.receipts = ex.receipts_mode() == ingest::ReceiptsMode::kBlock ? "eth_getBlockReceipts"
                                                                 : "eth_getTransactionReceipt";
  const auto counters = ex.node_counters();
  s.failovers = counters.failovers;
  s.rate_limited = counters.rate_limited;
  s.batch_splits = counters.batch_splits;
  for (const auto& e : ex.endpoints()) {
    s.endpoints.push_back({e.url, e.state, e.last_error, e.batch_limit, e.requests, e.failures,
                           e.rate_limited});
  }
  return s;
}

// SQL's eth_call (sql/evm_call.h) answered by the dataset's node through
// ingest::EthCaller, whose connections are made on first use.
sql::EthCallFunction MakeEthCall(const DatasetConfig& dataset, const Config& config) {
  ingest::EthCallerOptions options;
  options.url = dataset.rpc_url.front();
  options.timeout =
      std::chrono::milliseconds(static_cast<int64_t>(config.eth_call_timeout_secs * 1000.0 + 0.5));
  auto caller = std::make_shared<std::unique_ptr<ingest::EthCaller>>();
  auto mu = std::make_shared<std::mutex>();
  return [options, caller, mu](const std::vector<sql::EthCallRequest>& requests)
             -> arrow::Result<std::vector<sql::EthCallAnswer>> {
    ingest::EthCaller* c;
    {
      std::lock_guard<std::mutex> lock(*mu);
      if (!*caller) {
        ARROW_ASSIGN_OR_RAISE(*caller, ingest::EthCaller::Make(options));
      }
      c = caller->get();
    }
    std::vector<ingest::EthCallInput> calls(requests.size());
    for (size_t i = 0; i < requests.size(); ++i) {
      calls[i].from = requests[i].from;
      calls[i].to = requests[i].to;
      calls[i].data = requests[i].input;
      calls[i].block = requests[i].block;
    }
    ARROW_ASSIGN_OR_RAISE(auto outputs, c->Call(calls));
    std::vector<sql::EthCallAnswer> answers(outputs.size());
    for (size_t i = 0; i < outputs.size(); ++i) {
      answers[i].result = std::move(outputs[i].result);
      answers[i].error_code = outputs[i].error_code;
      answers[i].error_message = std::move(outputs[i].error_message);
      answers[i].error_data = std::move(outputs[i].error_data);
    }
    return answers;
  };
}

arrow::Status Serve(const Config& config) {
  spdlog::set_default_logger(spdlog::stderr_color_mt("sluice"));
  spdlog::set_level(spdlog::level::from_str(config.log_level));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");

  // Security (docs/security.md): keys, TLS, limits. Checked before anything opens.
  ARROW_ASSIGN_OR_RAISE(auto auth, MakeAuthenticator(config));
  const bool tls = !config.tls_cert_file.empty();
  std::string tls_cert, tls_key;
  if (tls) {
    ARROW_ASSIGN_OR_RAISE(tls_cert, ReadPemFile("tls_cert_file", config.tls_cert_file));
    ARROW_ASSIGN_OR_RAISE(tls_key, ReadPemFile("tls_key_file", config.tls_key_file));
    ARROW_RETURN_NOT_OK(CheckCertificateAndKey(config, tls_cert, tls_key));
  }
  common::LimitsOptions limits_options;
  limits_options.max_concurrent_queries = config.max_concurrent_queries;
  limits_options.max_concurrent_streams = config.max_concurrent_streams;
  limits_options.query_timeout =
      std::chrono::milliseconds(static_cast<int64_t>(config.query_timeout_secs * 1000.0 + 0.5));
  common::Limits limits(limits_options);  // outlives the servers below

  ARROW_ASSIGN_OR_RAISE(const auto data_dir, AbsoluteDataDir(config));
  const std::vector<DatasetConfig> datasets = config.Datasets();

  // The role (docs/deploy.md): with postgres_url, a stateless query server of
  // every dataset, which `sluice extract` workers extract.
  const auto role =
      config.postgres_url.empty() ? storage::StoreRole::kSingle : storage::StoreRole::kReader;
  for (const auto& d : datasets) {
    if (role == storage::StoreRole::kReader && d.extract) {
      return arrow::Status::Invalid(
          "dataset ", d.dataset, ": with postgres_url, sluice serve is a query server: add "
          "--no-extract (extract = false) and run `sluice extract` workers");
    }
  }

  // Every dataset: its store, its tables in the engine.
  std::vector<std::unique_ptr<storage::BlockStore>> stores;
  for (const auto& d : datasets) {
    ARROW_ASSIGN_OR_RAISE(auto store, OpenDatasetStore(config, data_dir, d, role));
    if (auto head = store->head()) {
      LOG_INFO("dataset {}: blocks {}..{} stored", d.dataset, store->snapshot()->range->start,
               head->number);
    }
    stores.push_back(std::move(store));
  }

  sql::EngineOptions engine_options;
  engine_options.data_dir = data_dir;
  engine_options.threads = config.query_threads;
  engine_options.max_memory_mb = config.query_max_mem_mb;
  engine_options.direct_scan = config.direct_scan;
  engine_options.scan_cache_max_mb = config.scan_cache_max_mb;
  engine_options.eth_call.max_calls_per_query = config.eth_call_max_calls;
  ARROW_ASSIGN_OR_RAISE(auto engine, sql::Engine::Make(engine_options));
  for (size_t i = 0; i < stores.size(); ++i) {
    ARROW_RETURN_NOT_OK(engine->AddDataset(stores[i].get()));
    // SQL's eth_call of this dataset goes to its node (the first of its rpc_url).
    if (config.eth_call_max_calls > 0 && !datasets[i].rpc_url.empty()) {
      ARROW_RETURN_NOT_OK(engine->AddEthCall(datasets[i].dataset, MakeEthCall(datasets[i], config)));
    }
  }
  for (const auto& d : config.derived_tables) {
    ARROW_RETURN_NOT_OK(engine->AddDerivedTable(d.name, d.sql));
  }

  // One extractor per dataset, each with its own threads and node connections: a
  // failing node of one chain never holds up another's.
  std::vector<std::unique_ptr<ingest::Extractor>> extractors(datasets.size());
  for (size_t i = 0; i < datasets.size(); ++i) {
    if (!datasets[i].extract) continue;
    ARROW_ASSIGN_OR_RAISE(extractors[i],
                          ingest::Extractor::Make(ExtractorOptionsOf(datasets[i]), stores[i].get()));
  }
  ARROW_RETURN_NOT_OK(StartExtractors(datasets, extractors));

  ARROW_ASSIGN_OR_RAISE(auto signer, flight::TicketSigner::Make(
                                         config.ticket_secret,
                                         std::chrono::seconds(config.ticket_ttl_secs)));
  flight::ServiceOptions service_options;
  service_options.rows_per_batch = config.rows_per_batch;
  service_options.stream.rows_per_batch = config.rows_per_batch;
  service_options.stream.microbatch_max_blocks =
      static_cast<uint64_t>(config.server_microbatch_max_interval);
  service_options.stream.keep_alive =
      config.testing_keep_alive_interval_ms > 0
          ? std::chrono::milliseconds(config.testing_keep_alive_interval_ms)
          : std::chrono::milliseconds(config.keep_alive_interval * 1000);
  service_options.limits = &limits;
  service_options.endpoint_max_blocks = static_cast<uint64_t>(config.endpoint_max_blocks);
  service_options.endpoint_locations = flight::SplitLocations(config.endpoint_locations);
  flight::FlightService service(engine.get(), std::move(signer), service_options);
  ARROW_ASSIGN_OR_RAISE(auto host_port, SplitHostPort(config.flight_addr));
  const auto& [flight_host, flight_port] = host_port;
  ARROW_ASSIGN_OR_RAISE(auto location,
                        tls ? arrow::flight::Location::ForGrpcTls(flight_host, flight_port)
                            : arrow::flight::Location::ForGrpcTcp(flight_host, flight_port));
  arrow::flight::FlightServerOptions options(location);
  if (tls) options.tls_certificates.push_back({tls_cert, tls_key});
  flight::InstallAuth(auth, &options);
  ARROW_RETURN_NOT_OK(service.Init(options));
  ARROW_RETURN_NOT_OK(service.SetShutdownOnSignals({SIGINT, SIGTERM}));

  // JSON Lines and the admin API, each on its own threads.
  http::JsonLinesOptions jsonl_options;
  ARROW_ASSIGN_OR_RAISE(auto jsonl_addr, SplitHostPort(config.jsonl_addr));
  jsonl_options.listen.host = jsonl_addr.first;
  jsonl_options.listen.port = jsonl_addr.second;
  jsonl_options.listen.tls_cert_file = config.tls_cert_file;
  jsonl_options.listen.tls_key_file = config.tls_key_file;
  jsonl_options.listen.auth = auth;
  jsonl_options.limits = &limits;
  ARROW_ASSIGN_OR_RAISE(auto jsonl, http::JsonLinesServer::Make(engine.get(), jsonl_options));

  http::AdminOptions admin_options;
  ARROW_ASSIGN_OR_RAISE(auto admin_addr, SplitHostPort(config.admin_api_addr));
  admin_options.listen.host = admin_addr.first;
  admin_options.listen.port = admin_addr.second;
  admin_options.listen.threads = 4;
  admin_options.listen.tls_cert_file = config.tls_cert_file;
  admin_options.listen.tls_key_file = config.tls_key_file;
  admin_options.listen.auth = auth;
  std::vector<http::AdminDataset> admin_datasets;
  for (size_t i = 0; i < datasets.size(); ++i) {
    http::AdminDataset dataset;
    dataset.store = stores[i].get();
    if (const ingest::Extractor* ex = extractors[i].get()) {  // outlives the admin server
      dataset.extraction = [ex] { return ExtractionStatusOf(*ex); };
    }
    admin_datasets.push_back(std::move(dataset));
  }
  ARROW_ASSIGN_OR_RAISE(auto admin, http::AdminServer::Make(admin_options, admin_datasets));
  jsonl->Start();
  admin->Start();

  // The lines on stdout: tests and scripts read the bound ports from them, the
  // Flight line first.
  std::cout << "sluice: flight listening on " << (tls ? "grpc+tls" : "grpc") << "://"
            << host_port.first << ":" << service.port() << std::endl;
  std::cout << "sluice: jsonl listening on " << jsonl->scheme() << "://" << jsonl_addr.first << ":"
            << jsonl->port() << std::endl;
  std::cout << "sluice: admin listening on " << admin->scheme() << "://" << admin_addr.first << ":"
            << admin->port() << std::endl;
  if (auth->enabled()) {
    LOG_INFO("authentication on: {} API key(s); /health and /ready stay open",
             auth->key_count());
  } else {
    LOG_INFO("authentication off: no API keys configured (docs/security.md)");
  }
  for (const auto& d : datasets) {
    LOG_INFO("serving dataset {} (network {}){}", d.dataset, d.network,
             role == storage::StoreRole::kReader ? " as a query server of the shared store"
             : d.extract                         ? ""
                                                 : " without extraction");
  }
  LOG_INFO("flight port {}, jsonl port {}, admin port {}", service.port(), jsonl->port(),
           admin->port());
  ARROW_RETURN_NOT_OK(service.Serve());
  LOG_INFO("shutting down");
  jsonl->Stop();
  admin->Stop();
  for (auto& ex : extractors) {
    if (ex) ex->Stop();
  }
  return arrow::Status::OK();
}

}  // namespace

void AddServeCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand(
      "serve",
      "Extract chains from their nodes and serve SQL over Arrow Flight; with postgres_url and "
      "--no-extract, a query server of the shared store (docs/deploy.md). Settings marked "
      "(dataset) belong to each dataset: as flags they set the one dataset of the shorthand, or "
      "the defaults of the config file's [[datasets]] tables (docs/datasets.md)");
  auto make_config = AddSettingFlags(cmd, /*no_extract_flag=*/true);
  cmd->callback([=] {
    auto run = [&]() -> arrow::Status {
      ARROW_ASSIGN_OR_RAISE(auto config, make_config());
      return Serve(config);
    };
    auto st = run();
    if (!st.ok()) {
      std::cerr << "sluice serve: " << st.message() << std::endl;
      *exit_code = 1;
    }
  });
}

}  // namespace sluice::cli
