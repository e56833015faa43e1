#include "sql/evm_integers.h"

#include <algorithm>
#include <cctype>
#include <vector>

#include "arrow/status.h"

namespace sluice::sql {

namespace {

// Four 64-bit limbs, limb[0] most significant.
struct Limbs {
  uint64_t v[4] = {0, 0, 0, 0};
};

Limbs ToLimbs(const Word256& w) {
  Limbs l;
  for (int i = 0; i < 4; ++i) {
    for (int b = 0; b < 8; ++b) l.v[i] = l.v[i] << 8 | w[8 * i + b];
  }
  return l;
}

Word256 FromLimbs(const Limbs& l) {
  Word256 w{};
  for (int i = 0; i < 4; ++i) {
    for (int b = 0; b < 8; ++b) w[8 * i + b] = static_cast<uint8_t>(l.v[i] >> (56 - 8 * b));
  }
  return w;
}

// Two's complement negation, modulo 2^256.
Word256 Negate(const Word256& w) {
  Word256 out;
  unsigned carry = 1;
  for (int i = 31; i >= 0; --i) {
    unsigned x = static_cast<uint8_t>(~w[i]) + carry;
    out[i] = static_cast<uint8_t>(x);
    carry = x >> 8;
  }
  return out;
}

bool IsZero(const Word256& w) {
  return std::all_of(w.begin(), w.end(), [](uint8_t b) { return b == 0; });
}

}  // namespace

std::string WordToDecimal(const Word256& w, bool is_signed) {
  bool negative = is_signed && (w[0] & 0x80);
  Limbs limb = ToLimbs(negative ? Negate(w) : w);
  // Repeated division by 10^19 (the largest power of ten in a uint64).
  constexpr uint64_t kChunk = 10000000000000000000ull;
  std::vector<uint64_t> chunks;  // least significant first
  auto is_zero = [&] { return (limb.v[0] | limb.v[1] | limb.v[2] | limb.v[3]) == 0; };
  do {
    unsigned __int128 rem = 0;
    for (int i = 0; i < 4; ++i) {
      unsigned __int128 cur = rem << 64 | limb.v[i];
      limb.v[i] = static_cast<uint64_t>(cur / kChunk);
      rem = cur % kChunk;
    }
    chunks.push_back(static_cast<uint64_t>(rem));
  } while (!is_zero());
  std::string out = negative ? "-" : "";
  out += std::to_string(chunks.back());
  for (size_t i = chunks.size() - 1; i-- > 0;) {
    std::string part = std::to_string(chunks[i]);
    out.append(19 - part.size(), '0');
    out += part;
  }
  return out;
}

bool WordFits(const Word256& w, bool is_signed, int bits) {
  size_t pad = 32 - static_cast<size_t>(bits) / 8;
  uint8_t fill = 0;
  if (is_signed && pad < 32 && (w[pad] & 0x80)) fill = 0xff;
  for (size_t i = 0; i < pad; ++i) {
    if (w[i] != fill) return false;
  }
  return true;
}

uint64_t WordLow64(const Word256& w) { return ToLimbs(w).v[3]; }

void WordLow128(const Word256& w, uint64_t* lower, int64_t* upper) {
  Limbs l = ToLimbs(w);
  *lower = l.v[3];
  *upper = static_cast<int64_t>(l.v[2]);
}

Word256 WordFromInt64(int64_t v) {
  uint64_t fill = v < 0 ? ~uint64_t{0} : 0;
  return FromLimbs(Limbs{{fill, fill, fill, static_cast<uint64_t>(v)}});
}

Word256 WordFromUint64(uint64_t v) { return FromLimbs(Limbs{{0, 0, 0, v}}); }

Word256 WordFromInt128(uint64_t lower, int64_t upper) {
  uint64_t fill = upper < 0 ? ~uint64_t{0} : 0;
  return FromLimbs(Limbs{{fill, fill, static_cast<uint64_t>(upper), lower}});
}

Word256 WordFromUint128(uint64_t lower, uint64_t upper) {
  return FromLimbs(Limbs{{0, 0, upper, lower}});
}

arrow::Result<BigInteger> ParseInteger(std::string_view text) {
  auto bad = [&] {
    return arrow::Status::Invalid("'", text.substr(0, 100),
                                  "' is not an integer (decimal digits, or 0x and hex digits)");
  };
  BigInteger n;
  std::string_view s = text;
  if (s.starts_with("0x") || s.starts_with("0X")) {
    s.remove_prefix(2);
    while (s.size() > 1 && s[0] == '0') s.remove_prefix(1);
    if (s.empty() || s.size() > 64) {
      if (s.size() > 64) return arrow::Status::Invalid("'", text.substr(0, 100), "' is 2^256 or more");
      return bad();
    }
    for (size_t i = 0; i < s.size(); ++i) {
      char c = static_cast<char>(std::tolower(static_cast<unsigned char>(s[s.size() - 1 - i])));
      int d = std::isdigit(static_cast<unsigned char>(c)) ? c - '0'
              : (c >= 'a' && c <= 'f')                    ? c - 'a' + 10
                                                          : -1;
      if (d < 0) return bad();
      n.magnitude[31 - i / 2] |= static_cast<uint8_t>(i % 2 ? d << 4 : d);
    }
    return n;
  }
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    n.negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s.empty()) return bad();
  Limbs l;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return bad();
    // l = l * 10 + digit, checking for a carry out of 256 bits.
    unsigned __int128 carry = static_cast<unsigned>(c - '0');
    for (int i = 3; i >= 0; --i) {
      unsigned __int128 x = static_cast<unsigned __int128>(l.v[i]) * 10 + carry;
      l.v[i] = static_cast<uint64_t>(x);
      carry = x >> 64;
    }
    if (carry) return arrow::Status::Invalid("'", text.substr(0, 100), "' is 2^256 or more");
  }
  n.magnitude = FromLimbs(l);
  if (IsZero(n.magnitude)) n.negative = false;
  return n;
}

arrow::Result<Word256> FitInteger(const BigInteger& n, bool is_signed, int bits) {
  auto range = [&] {
    return arrow::Status::Invalid((n.negative ? "-" : ""), WordToDecimal(n.magnitude, false),
                                  " is out of range for ", is_signed ? "int" : "uint", bits);
  };
  if (!is_signed) {
    if (n.negative || !WordFits(n.magnitude, false, bits)) return range();
    return n.magnitude;
  }
  Word256 w = n.negative ? Negate(n.magnitude) : n.magnitude;
  bool sign = (w[0] & 0x80) != 0;
  if (sign != n.negative || !WordFits(w, true, bits)) return range();
  return w;
}

BigInteger WordToInteger(const Word256& w, bool is_signed) {
  BigInteger n;
  n.negative = is_signed && (w[0] & 0x80);
  n.magnitude = n.negative ? Negate(w) : w;
  return n;
}

arrow::Result<std::string> ShiftDecimal(std::string_view number, int64_t places) {
  auto bad = [&] {
    return arrow::Status::Invalid("'", number.substr(0, 100),
                                  "' is not a decimal number (such as 1500000000000000000, "
                                  "-1.5 or 1.5e18)");
  };
  constexpr int64_t kMaxPlaces = 1000;
  constexpr int64_t kMaxDigits = 10000;
  if (places > kMaxPlaces || places < -kMaxPlaces) {
    return arrow::Status::Invalid("places must be between -", kMaxPlaces, " and ", kMaxPlaces,
                                  ", got ", places);
  }
  std::string_view s = number;
  bool negative = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  std::string digits;
  int64_t exponent = 0;  // value = digits * 10^exponent
  bool point = false, any = false;
  size_t i = 0;
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (std::isdigit(static_cast<unsigned char>(c))) {
      if (digits.size() >= static_cast<size_t>(kMaxDigits)) return bad();
      digits.push_back(c);
      any = true;
      if (point) --exponent;
    } else if (c == '.' && !point) {
      point = true;
    } else {
      break;
    }
  }
  if (!any) return bad();
  if (i < s.size()) {
    if (s[i] != 'e' && s[i] != 'E') return bad();
    std::string_view e = s.substr(i + 1);
    bool e_negative = false;
    if (!e.empty() && (e[0] == '-' || e[0] == '+')) {
      e_negative = e[0] == '-';
      e.remove_prefix(1);
    }
    if (e.empty() || e.size() > 6) return bad();
    int64_t ev = 0;
    for (char c : e) {
      if (!std::isdigit(static_cast<unsigned char>(c))) return bad();
      ev = ev * 10 + (c - '0');
    }
    exponent += e_negative ? -ev : ev;
  }
  exponent += places;
  // Strip leading zeros, then trailing ones into the exponent.
  size_t first = digits.find_first_not_of('0');
  if (first == std::string::npos) return std::string("0");
  digits.erase(0, first);
  while (digits.back() == '0') {
    digits.pop_back();
    ++exponent;
  }
  const int64_t n = static_cast<int64_t>(digits.size());
  if (n + std::max<int64_t>(exponent, -exponent) > kMaxDigits) {
    return arrow::Status::Invalid("shifting '", number.substr(0, 100), "' by ", places,
                                  " places gives more than ", kMaxDigits, " digits");
  }
  std::string out = negative ? "-" : "";
  if (exponent >= 0) {
    out += digits;
    out.append(static_cast<size_t>(exponent), '0');
  } else if (n > -exponent) {
    out += digits.substr(0, static_cast<size_t>(n + exponent));
    out += '.';
    out += digits.substr(static_cast<size_t>(n + exponent));
  } else {
    out += "0.";
    out.append(static_cast<size_t>(-exponent - n), '0');
    out += digits;
  }
  return out;
}

}  // namespace sluice::sql
