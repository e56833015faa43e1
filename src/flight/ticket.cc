#include "flight/ticket.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "common/hex.h"
#include "nlohmann/json.hpp"

namespace sluice::flight {

namespace {
constexpr std::string_view kMagic = "slc1";
constexpr size_t kMacSize = 32;

std::string Mac(const std::string& key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
}  // namespace

arrow::Result<TicketSigner> TicketSigner::Make(const std::string& secret_hex,
                                               std::chrono::seconds ttl) {
  TicketSigner signer;
  signer.ttl_ = ttl;
  if (secret_hex.empty()) {
    signer.key_.resize(32);
    if (RAND_bytes(reinterpret_cast<unsigned char*>(signer.key_.data()), 32) != 1) {
      return arrow::Status::IOError("cannot draw a random ticket key");
    }
  } else {
    auto bytes = common::FromHex(secret_hex);
    if (!bytes.ok()) return arrow::Status::Invalid("setting ticket_secret must be hex");
    if (bytes->size() < 16) {
      return arrow::Status::Invalid("setting ticket_secret must be at least 16 bytes (32 hex)");
    }
    signer.key_.assign(bytes->begin(), bytes->end());
  }
  return signer;
}

std::string TicketSigner::Issue(TicketPayload payload) const {
  payload.expires_ms = NowMs() + ttl_.count() * 1000;
  nlohmann::json j = {{"sql", payload.sql},
                      {"stream", payload.stream},
                      {"resume", payload.resume},
                      {"exp", payload.expires_ms}};
  if (!payload.params.empty()) j["params"] = common::ToHex(payload.params);
  if (!payload.command.empty()) j["command"] = common::ToHex(payload.command);
  if (payload.rows_per_batch > 0) j["rpb"] = payload.rows_per_batch;
  if (!payload.range_table.empty()) {
    j["range"] = {{"t", payload.range_table},
                  {"lo", payload.range_lo},
                  {"hi", payload.range_hi},
                  {"h", payload.range_hash}};
  }
  // Strings are UTF-8 (flight/command.cc checks the SQL); should one not be, its
  // invalid bytes become U+FFFD rather than an exception escaping the RPC.
  std::string body =
      std::string(kMagic) + j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return body + Mac(key_, body);
}

arrow::Result<TicketPayload> TicketSigner::Redeem(const std::string& ticket) const {
  const auto invalid = arrow::Status::Invalid(
      "ticket is not valid: pass the ticket from this server's GetFlightInfo unchanged");
  if (ticket.size() < kMagic.size() + kMacSize || ticket.compare(0, kMagic.size(), kMagic) != 0) {
    return invalid;
  }
  std::string_view body(ticket.data(), ticket.size() - kMacSize);
  std::string expected = Mac(key_, body);
  if (CRYPTO_memcmp(expected.data(), ticket.data() + body.size(), kMacSize) != 0) return invalid;
  auto j = nlohmann::json::parse(body.substr(kMagic.size()), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return invalid;
  TicketPayload p;
  try {
    p.sql = j.at("sql").get<std::string>();
    p.stream = j.at("stream").get<bool>();
    p.resume = j.at("resume").get<std::string>();
    // Integers only: nlohmann converts a float to int64_t without a range check.
    if (!j.at("exp").is_number_integer()) return invalid;
    p.expires_ms = j.at("exp").get<int64_t>();
    for (auto [key, out] : {std::pair{"params", &p.params}, std::pair{"command", &p.command}}) {
      if (!j.contains(key)) continue;
      auto bytes = common::FromHex(j.at(key).get<std::string>());
      if (!bytes.ok()) return invalid;
      out->assign(bytes->begin(), bytes->end());
    }
    if (j.contains("rpb")) {  // absent in tickets without a fetch size
      if (!j.at("rpb").is_number_integer()) return invalid;
      p.rows_per_batch = j.at("rpb").get<int64_t>();
    }
    if (j.contains("range")) {  // only in the endpoints of a split answer
      const auto& r = j.at("range");
      if (!r.at("lo").is_number_unsigned() || !r.at("hi").is_number_unsigned()) return invalid;
      p.range_table = r.at("t").get<std::string>();
      p.range_lo = r.at("lo").get<uint64_t>();
      p.range_hi = r.at("hi").get<uint64_t>();
      p.range_hash = r.at("h").get<std::string>();
    }
  } catch (const std::exception&) {
    return invalid;
  }
  if (NowMs() > p.expires_ms) {
    return arrow::Status::Invalid("ticket expired: call GetFlightInfo again for a new one");
  }
  return p;
}

}  // namespace sluice::flight
