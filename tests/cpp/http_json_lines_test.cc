#include "arrow/api.h"
#include "arrow/json/from_string.h"
#include "gtest/gtest.h"
#include "http/gzip.h"
#include "http/http_server.h"
#include "http/json_lines.h"
#include "http/jsonl_server.h"
#include "zlib.h"

namespace sluice::http {

namespace {

// The JSON of each value of `json_values` (Arrow's JSON form) as an array of `type`.
std::vector<std::string> Encode(const std::shared_ptr<arrow::DataType>& type,
                                const std::string& json_values) {
  auto array = arrow::json::ArrayFromJSONString(type, json_values);
  EXPECT_TRUE(array.ok()) << array.status().ToString();
  std::vector<std::string> out;
  for (int64_t i = 0; i < (*array)->length(); ++i) {
    std::string s;
    AppendJsonValue(**array, i, &s);
    out.push_back(s);
  }
  return out;
}

using V = std::vector<std::string>;

}  // namespace

TEST(JsonLines, IntegersExact) {
  EXPECT_EQ(Encode(arrow::uint64(), "[0, 9007199254740993, 18446744073709551615, null]"),
            (V{"0", "9007199254740993", "18446744073709551615", "null"}));
  EXPECT_EQ(Encode(arrow::int64(), "[-9223372036854775808, 9223372036854775807]"),
            (V{"-9223372036854775808", "9223372036854775807"}));
  EXPECT_EQ(Encode(arrow::int8(), "[-128, 127]"), (V{"-128", "127"}));
}

TEST(JsonLines, DecimalsExactWithScale) {
  EXPECT_EQ(Encode(arrow::decimal128(38, 0),
                   R"(["123456789012345678901234567890123456", "-1", "0"])"),
            (V{"123456789012345678901234567890123456", "-1", "0"}));
  EXPECT_EQ(Encode(arrow::decimal128(10, 3), R"(["12.500", "-0.001"])"), (V{"12.500", "-0.001"}));
  EXPECT_EQ(Encode(arrow::decimal256(76, 0), R"(["1157920892373161954235709850086879078532699846656405640394575840079131296399"])"),
            (V{"1157920892373161954235709850086879078532699846656405640394575840079131296399"}));
}

TEST(JsonLines, Floats) {
  EXPECT_EQ(Encode(arrow::float64(), "[0.1, 1e300, -2.5, 3]"), (V{"0.1", "1e+300", "-2.5", "3"}));
  EXPECT_EQ(Encode(arrow::float32(), "[0.1]"), (V{"0.1"}));
  auto nan = arrow::MakeArrayFromScalar(arrow::DoubleScalar(std::nan("")), 1).ValueOrDie();
  std::string s;
  AppendJsonValue(*nan, 0, &s);
  EXPECT_EQ(s, "\"NaN\"");
}

TEST(JsonLines, StringsEscaped) {
  EXPECT_EQ(Encode(arrow::utf8(), R"(["plain", "q\"b\\n\nt\t\u0001", "ünï €"])"),
            (V{R"("plain")", R"("q\"b\\n\nt\t\u0001")", "\"ünï €\""}));
}

TEST(JsonLines, BinaryAsHex) {
  EXPECT_EQ(Encode(arrow::binary(), R"(["", "\u0000\u007f"])"), (V{"\"0x\"", "\"0x007f\""}));
  EXPECT_EQ(Encode(arrow::fixed_size_binary(2), R"(["ab"])"), (V{"\"0x6162\""}));
}

TEST(JsonLines, TimestampsIsoUtc) {
  auto ts = [](arrow::TimeUnit::type unit) { return arrow::timestamp(unit, "UTC"); };
  EXPECT_EQ(Encode(ts(arrow::TimeUnit::SECOND), "[0, 1704067200, -1]"),
            (V{"\"1970-01-01T00:00:00Z\"", "\"2024-01-01T00:00:00Z\"", "\"1969-12-31T23:59:59Z\""}));
  EXPECT_EQ(Encode(ts(arrow::TimeUnit::MICRO), "[1704067200000000, 1704067200500000, -1]"),
            (V{"\"2024-01-01T00:00:00Z\"", "\"2024-01-01T00:00:00.500000Z\"",
               "\"1969-12-31T23:59:59.999999Z\""}));
  EXPECT_EQ(Encode(arrow::timestamp(arrow::TimeUnit::NANO), "[951782400000000001]"),
            (V{"\"2000-02-29T00:00:00.000000001Z\""}));
  EXPECT_EQ(Encode(arrow::date32(), "[0, 19723, -1]"),
            (V{"\"1970-01-01\"", "\"2024-01-01\"", "\"1969-12-31\""}));
  EXPECT_EQ(Encode(arrow::time64(arrow::TimeUnit::MICRO), "[45296000000, 45296000001]"),
            (V{"\"12:34:56\"", "\"12:34:56.000001\""}));
}

TEST(JsonLines, NestedValues) {
  EXPECT_EQ(Encode(arrow::list(arrow::int32()), "[[1, null, 3], [], null]"),
            (V{"[1,null,3]", "[]", "null"}));
  auto st = arrow::struct_({arrow::field("a", arrow::int32()), arrow::field("b", arrow::utf8())});
  EXPECT_EQ(Encode(st, R"([{"a": 1, "b": "x"}, {"a": null, "b": null}, null])"),
            (V{R"({"a":1,"b":"x"})", R"({"a":null,"b":null})", "null"}));
  EXPECT_EQ(Encode(arrow::map(arrow::utf8(), arrow::int32()), R"([[["k", 1], ["l", 2]]])"),
            (V{R"({"k":1,"l":2})"}));
  EXPECT_EQ(Encode(arrow::map(arrow::int32(), arrow::int32()), R"([[[7, 1]]])"),
            (V{R"({"7":1})"}));
}

TEST(JsonLines, EncoderWritesOneObjectPerRow) {
  auto schema = arrow::schema({arrow::field("n", arrow::uint64()), arrow::field("h\"x", arrow::binary())});
  auto n = arrow::json::ArrayFromJSONString(arrow::uint64(), "[1, 2]").ValueOrDie();
  auto h = arrow::json::ArrayFromJSONString(arrow::binary(), R"(["\u0001", null])").ValueOrDie();
  auto batch = arrow::RecordBatch::Make(schema, 2, {n, h});
  JsonLinesEncoder encoder(*schema);
  std::string out;
  encoder.Append(*batch, 0, 2, &out);
  EXPECT_EQ(out, "{\"n\":1,\"h\\\"x\":\"0x01\"}\n{\"n\":2,\"h\\\"x\":null}\n");
}

TEST(Gzip, PiecesDecompressToTheWhole) {
  auto gz = GzipStream::Make().ValueOrDie();
  std::string compressed;
  std::string whole;
  for (int i = 0; i < 1000; ++i) {
    std::string piece = "{\"range\":" + std::to_string(i) + "}\n";
    whole += piece;
    ASSERT_TRUE(gz->Write(piece, &compressed).ok());
  }
  ASSERT_TRUE(gz->Finish(&compressed).ok());
  z_stream z{};
  ASSERT_EQ(inflateInit2(&z, 15 + 16), Z_OK);
  std::string back(whole.size() + 16, '\0');
  z.next_in = reinterpret_cast<Bytef*>(compressed.data());
  z.avail_in = static_cast<uInt>(compressed.size());
  z.next_out = reinterpret_cast<Bytef*>(back.data());
  z.avail_out = static_cast<uInt>(back.size());
  EXPECT_EQ(inflate(&z, Z_FINISH), Z_STREAM_END);
  back.resize(z.total_out);
  inflateEnd(&z);
  EXPECT_EQ(back, whole);
}

TEST(Http, AcceptsGzip) {
  EXPECT_TRUE(AcceptsGzip("gzip"));
  EXPECT_TRUE(AcceptsGzip("deflate, gzip;q=0.5, br"));
  EXPECT_TRUE(AcceptsGzip(" GZIP "));
  EXPECT_FALSE(AcceptsGzip("gzip;q=0"));
  EXPECT_FALSE(AcceptsGzip("identity"));
  EXPECT_FALSE(AcceptsGzip(""));
}

TEST(Http, StatusCodes) {
  EXPECT_EQ(HttpStatusOf(arrow::Status::Invalid("x")), std::make_pair(400, std::string("INVALID_ARGUMENT")));
  EXPECT_EQ(HttpStatusOf(arrow::Status::IOError("x")).first, 500);
  EXPECT_EQ(HttpStatusOf(arrow::Status::Cancelled("x")).second, "CANCELLED");
  EXPECT_EQ(ErrorJson("INTERNAL", "a \"b\""),
            R"({"error_code":"INTERNAL","error_message":"a \"b\""})");
}

}  // namespace sluice::http
