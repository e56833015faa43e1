// Fuzzes ticket decoding (flight/ticket.h, TicketSigner::Redeem), which DoGet
// runs on bytes from any client.
//
// Three ways in:
//  1. the bytes as a ticket: anything but a genuine ticket is refused;
//  2. the bytes as a ticket's payload, signed with the fuzzer's key: reaches the
//     payload parser behind the MAC, which must refuse what is not a payload;
//  3. the bytes as a query: Issue then Redeem gives back the same payload.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "flight/ticket.h"
#include "nlohmann/json.hpp"

namespace {

constexpr char kKeyHex[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

const sluice::flight::TicketSigner& Signer() {
  static const auto signer =
      sluice::flight::TicketSigner::Make(kKeyHex, std::chrono::seconds(300)).ValueOrDie();
  return signer;
}

std::string Sign(const std::string& body) {
  unsigned char key[32];
  for (int i = 0; i < 32; ++i) key[i] = static_cast<unsigned char>(i);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key, sizeof(key), reinterpret_cast<const unsigned char*>(body.data()),
       body.size(), mac, &len);
  return body + std::string(reinterpret_cast<char*>(mac), len);
}

bool IsUtf8(const std::string& s) {
  try {
    (void)nlohmann::json(s).dump();
    return true;
  } catch (const nlohmann::json::exception&) {
    return false;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  const auto& signer = Signer();

  // 1. Unsigned bytes are never a valid ticket (forging needs the key).
  if (signer.Redeem(bytes).ok()) std::abort();

  // 2. Signed payload: accepted or refused, never a crash.
  auto signed_payload = signer.Redeem(Sign("slc1" + bytes));
  if (!signed_payload.ok() && signed_payload.status().message().empty()) std::abort();

  // 3. Round trip: exact for UTF-8 strings (what the service passes), and never
  // a failure (invalid bytes are replaced).
  sluice::flight::TicketPayload payload;
  const size_t cut = size / 2;
  payload.sql = bytes.substr(0, cut);
  payload.resume = bytes.substr(cut);
  payload.stream = size % 2 == 1;
  auto redeemed = signer.Redeem(signer.Issue(payload));
  if (!redeemed.ok() || redeemed->stream != payload.stream) std::abort();
  if (IsUtf8(payload.sql) && IsUtf8(payload.resume) &&
      (redeemed->sql != payload.sql || redeemed->resume != payload.resume)) {
    std::abort();
  }
  return 0;
}
