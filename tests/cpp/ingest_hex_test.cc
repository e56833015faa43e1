#include "gtest/gtest.h"
#include "ingest/hex_quantity.h"

namespace sluice::ingest {

TEST(IngestHex, Quantity64) {
  EXPECT_EQ(*ParseQuantity("0x0"), 0u);
  EXPECT_EQ(*ParseQuantity("0x1a"), 26u);
  EXPECT_EQ(*ParseQuantity("0x0000000000000000"), 0u);  // block nonce as DATA
  EXPECT_EQ(*ParseQuantity("0xffffffffffffffff"), UINT64_MAX);
  EXPECT_EQ(*ParseQuantity("0x00ffffffffffffffff"), UINT64_MAX);
  EXPECT_EQ(*ParseQuantity("0xABCdef"), 0xabcdefu);
  EXPECT_TRUE(ParseQuantity("0x10000000000000000").status().IsInvalid());
  EXPECT_TRUE(ParseQuantity("0x").status().IsInvalid());
  EXPECT_TRUE(ParseQuantity("12").status().IsInvalid());
  EXPECT_TRUE(ParseQuantity("0xg1").status().IsInvalid());
  EXPECT_TRUE(ParseQuantity("").status().IsInvalid());
}

TEST(IngestHex, Quantity128AndDecimal128) {
  auto max128 = *ParseQuantity128("0xffffffffffffffffffffffffffffffff");
  EXPECT_EQ(Uint128ToDecimal(max128), "340282366920938463463374607431768211455");
  EXPECT_TRUE(ParseQuantity128("0x100000000000000000000000000000000").status().IsInvalid());

  // 10^38 - 1 fits Decimal128(38, 0); 10^38 does not.
  auto d = ParseQuantityDecimal128("0x4b3b4ca85a86c47a098a223fffffffff");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->ToIntegerString(), "99999999999999999999999999999999999999");
  auto over = ParseQuantityDecimal128("0x4b3b4ca85a86c47a098a224000000000");
  ASSERT_TRUE(over.status().IsInvalid());
  EXPECT_NE(over.status().message().find("100000000000000000000000000000000000000"),
            std::string::npos)
      << over.status().message();
  EXPECT_NE(over.status().message().find("38"), std::string::npos);
  // Above 128 bits: still a clear message with the exact value.
  auto huge = ParseQuantityDecimal128("0x10000000000000000000000000000000000");
  ASSERT_TRUE(huge.status().IsInvalid());
  EXPECT_NE(huge.status().message().find("87112285931760246646623899502532662132736"),
            std::string::npos)
      << huge.status().message();
  EXPECT_EQ(ParseQuantityDecimal128("0x3b9aca00")->ToIntegerString(), "1000000000");
}

TEST(IngestHex, Uint256ToDecimal) {
  EXPECT_EQ(*QuantityToDecimal("0x0"), "0");
  EXPECT_EQ(*QuantityToDecimal("0x1234"), "4660");
  EXPECT_EQ(*QuantityToDecimal("0x10f0cf064dd59200000"), "5000000000000000000000");
  EXPECT_EQ(*QuantityToDecimal("0xffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"),
            "115792089237316195423570985008687907853269984665640564039457584007913129639935");
  // 2^128 and 2^192 (limb boundaries), 10^19 * 2^64 (chunk boundary)
  EXPECT_EQ(*QuantityToDecimal("0x100000000000000000000000000000000"),
            "340282366920938463463374607431768211456");
  EXPECT_EQ(*QuantityToDecimal("0x1000000000000000000000000000000000000000000000000"),
            "6277101735386680763835789423207666416102355444464034512896");
  EXPECT_EQ(*QuantityToDecimal("0x8ac7230489e800000000000000000000"),
            "184467440737095516160000000000000000000");
  // Zero chunks in the middle must be zero-padded.
  EXPECT_EQ(*QuantityToDecimal("0x28c87cb5c89a2571ebfdcb54864ada834a000000075bcd15"),
            "1000000000000000000000000000000000000000000000000123456789");
  EXPECT_EQ(*QuantityToDecimal("0x1" + std::string(63, '0')),
            "7237005577332262213973186563042994240829374041602535252466099000494570602496");
  EXPECT_TRUE(QuantityToDecimal("0x1" + std::string(64, '0')).status().IsInvalid());
}

TEST(IngestHex, Data) {
  uint8_t addr[20];
  ASSERT_TRUE(ParseFixedData("0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266", addr, 20).ok());
  EXPECT_EQ(addr[0], 0xf3);
  EXPECT_EQ(addr[19], 0x66);
  EXPECT_TRUE(ParseFixedData("0xf39f", addr, 20).IsInvalid());
  EXPECT_TRUE(ParseFixedData("f39fd6e51aad88f6f4ce6ab8827279cfffb92266", addr, 20).IsInvalid());

  uint8_t word[32];
  ASSERT_TRUE(ParseQuantityBytes("0x1ab", word, 32).ok());
  for (int i = 0; i < 30; ++i) EXPECT_EQ(word[i], 0) << i;
  EXPECT_EQ(word[30], 0x01);
  EXPECT_EQ(word[31], 0xab);
  EXPECT_TRUE(ParseQuantityBytes("0x1" + std::string(64, '0'), word, 32).IsInvalid());

  std::string out = "x";
  ASSERT_TRUE(AppendData("0x", &out).ok());
  ASSERT_TRUE(AppendData("0x00ff10", &out).ok());
  EXPECT_EQ(out, std::string("x\x00\xff\x10", 4));
  EXPECT_TRUE(AppendData("0x123", &out).IsInvalid());
  EXPECT_TRUE(AppendData("0xzz", &out).IsInvalid());
  EXPECT_EQ(out.size(), 4u);

  EXPECT_EQ(FormatQuantity(0), "0x0");
  EXPECT_EQ(FormatQuantity(26), "0x1a");
  EXPECT_EQ(FormatQuantity(UINT64_MAX), "0xffffffffffffffff");
}

}  // namespace sluice::ingest
