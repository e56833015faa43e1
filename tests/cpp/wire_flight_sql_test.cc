// The Flight SQL wire messages (wire/flight_sql.h) against bytes as protoc encodes
// them (written out by hand from the protobuf encoding rules), and the LIKE
// matcher of the metadata commands (flight/flight_sql.h).
#include <gtest/gtest.h>

#include <type_traits>

#include "flight/flight_sql.h"
#include "wire/flight_sql.h"

namespace sluice::wire {
namespace {

std::string Field(int number, const std::string& bytes) {
  return std::string(1, static_cast<char>(number << 3 | 2)) +
         std::string(1, static_cast<char>(bytes.size())) + bytes;
}

std::string AnyOf(const std::string& name, const std::string& value) {
  return Field(1, std::string(kFlightSqlTypePrefix) + name) + Field(2, value);
}

TEST(WireFlightSql, DecodesGetTablesAsProtocEncodesIt) {
  // catalog "c", db_schema_filter_pattern "eth%", table_types ["TABLE","VIEW"],
  // include_schema true (field 5 varint 1).
  std::string value = Field(1, "c") + Field(2, "eth%") + Field(4, "TABLE") + Field(4, "VIEW") +
                      std::string("\x28\x01", 2);
  auto decoded = DecodeCommand(AnyOf("CommandGetTables", value));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ASSERT_TRUE(decoded->has_value());
  const auto& t = std::get<CommandGetTables>(**decoded);
  EXPECT_EQ(t.catalog, "c");
  EXPECT_EQ(t.db_schema_filter_pattern, "eth%");
  EXPECT_FALSE(t.table_name_filter_pattern.has_value());
  EXPECT_EQ(t.table_types, (std::vector<std::string>{"TABLE", "VIEW"}));
  EXPECT_TRUE(t.include_schema);
  EXPECT_EQ(EncodeCommand(t), AnyOf("CommandGetTables", value));
}

TEST(WireFlightSql, SqlInfoPackedAndUnpacked) {
  // Packed: field 1, length 3, varints 0, 1, 504 (0xf8 0x03).
  auto packed = DecodeCommand(AnyOf("CommandGetSqlInfo", std::string("\x0a\x04\x00\x01\xf8\x03", 6)));
  ASSERT_TRUE(packed.ok()) << packed.status();
  EXPECT_EQ(std::get<CommandGetSqlInfo>(**packed).info, (std::vector<uint32_t>{0, 1, 504}));
  auto unpacked = DecodeCommand(AnyOf("CommandGetSqlInfo", std::string("\x08\x00\x08\x03", 4)));
  ASSERT_TRUE(unpacked.ok());
  EXPECT_EQ(std::get<CommandGetSqlInfo>(**unpacked).info, (std::vector<uint32_t>{0, 3}));
}

TEST(WireFlightSql, PlainSqlIsNotACommand) {
  auto d = DecodeCommand("SELECT 1");
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(d->has_value());
  // Field 1 holding a type URL of another package is not Flight SQL either.
  d = DecodeCommand(Field(1, "type.googleapis.com/other.Thing"));
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(d->has_value());
}

TEST(WireFlightSql, MalformedMessagesAreInvalid) {
  // CommandGetTables whose field 1 claims 0xff bytes that are not there.
  auto d = DecodeCommand(AnyOf("CommandGetTables", std::string("\x0a\xff", 2)));
  EXPECT_TRUE(d.status().IsInvalid()) << d.status();
  // include_schema with the wrong wire type.
  d = DecodeCommand(AnyOf("CommandGetTables", Field(5, "x")));
  EXPECT_TRUE(d.status().IsInvalid());
  EXPECT_FALSE(DecodeCreatePreparedStatementRequest("garbage").ok());
  EXPECT_FALSE(DecodeCreatePreparedStatementRequest(
                   Encode(ActionClosePreparedStatementRequest{"h"})).ok());
}

TEST(WireFlightSql, UnknownCommandsAreNamed) {
  auto d = DecodeCommand(AnyOf("CommandStatementUpdate", Field(1, "DELETE")));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(std::get<UnsupportedCommand>(**d).name, "CommandStatementUpdate");
}

TEST(WireFlightSql, PreparedStatementMessagesRoundTrip) {
  ActionCreatePreparedStatementResult result{"handle", "schema-bytes", ""};
  auto encoded = Encode(result);
  EXPECT_EQ(encoded, AnyOf("ActionCreatePreparedStatementResult",
                           Field(1, "handle") + Field(2, "schema-bytes")));
  auto back = DecodeCreatePreparedStatementResult(encoded);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->prepared_statement_handle, "handle");
  EXPECT_EQ(back->dataset_schema, "schema-bytes");
  EXPECT_EQ(back->parameter_schema, "");
  EXPECT_EQ(DecodeCreatePreparedStatementRequest(Encode(ActionCreatePreparedStatementRequest{
                                                     "SELECT ?"}))->query,
            "SELECT ?");
  // DoPutPreparedStatementResult is the bare message, not an Any.
  EXPECT_EQ(Encode(DoPutPreparedStatementResult{"h"}), Field(1, "h"));
  EXPECT_EQ(DecodeDoPutPreparedStatementResult(Field(1, "h"))->prepared_statement_handle, "h");
}

TEST(WireFlightSql, XdbcTypeInfoWithANegativeDataType) {
  // data_type -5 (XDBC_BIGINT): an int32 varint, sign-extended to ten bytes.
  std::string value("\x08\xfb\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11);
  auto d = DecodeCommand(AnyOf("CommandGetXdbcTypeInfo", value));
  ASSERT_TRUE(d.ok()) << d.status();
  const auto& x = std::get<CommandGetXdbcTypeInfo>(**d);
  EXPECT_EQ(x.data_type, -5);
  EXPECT_EQ(EncodeCommand(x), AnyOf("CommandGetXdbcTypeInfo", value));
  d = DecodeCommand(AnyOf("CommandGetXdbcTypeInfo", ""));
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(std::get<CommandGetXdbcTypeInfo>(**d).data_type.has_value());
}

TEST(WireFlightSql, KeyCommands) {
  std::string one = Field(2, "eth_rpc") + Field(3, "blocks");  // no catalog
  for (const char* name : {"CommandGetPrimaryKeys", "CommandGetExportedKeys",
                           "CommandGetImportedKeys"}) {
    auto d = DecodeCommand(AnyOf(name, one));
    ASSERT_TRUE(d.ok()) << name;
    std::visit(
        [&](const auto& m) {
          using T = std::decay_t<decltype(m)>;
          if constexpr (std::is_same_v<T, CommandGetPrimaryKeys> ||
                        std::is_same_v<T, CommandGetExportedKeys> ||
                        std::is_same_v<T, CommandGetImportedKeys>) {
            EXPECT_FALSE(m.table.catalog.has_value());
            EXPECT_EQ(m.table.db_schema, "eth_rpc");
            EXPECT_EQ(m.table.table, "blocks");
            EXPECT_EQ(EncodeCommand(m), AnyOf(name, one));
          } else {
            ADD_FAILURE() << name << " decoded as another command";
          }
        },
        **d);
  }
  std::string cross = Field(1, "memory") + Field(3, "blocks") + Field(5, "eth_rpc") +
                      Field(6, "logs");
  auto d = DecodeCommand(AnyOf("CommandGetCrossReference", cross));
  ASSERT_TRUE(d.ok());
  const auto& c = std::get<CommandGetCrossReference>(**d);
  EXPECT_EQ(c.pk_table.catalog, "memory");
  EXPECT_FALSE(c.pk_table.db_schema.has_value());
  EXPECT_EQ(c.pk_table.table, "blocks");
  EXPECT_FALSE(c.fk_table.catalog.has_value());
  EXPECT_EQ(c.fk_table.db_schema, "eth_rpc");
  EXPECT_EQ(c.fk_table.table, "logs");
  EXPECT_EQ(EncodeCommand(c), AnyOf("CommandGetCrossReference", cross));
}

TEST(WireFlightSql, CancelQueryMessages) {
  auto request = Encode(ActionCancelQueryRequest{"flight-info-bytes"});
  EXPECT_EQ(request, AnyOf("ActionCancelQueryRequest", Field(1, "flight-info-bytes")));
  EXPECT_EQ(DecodeCancelQueryRequest(request)->info, "flight-info-bytes");
  auto result = Encode(ActionCancelQueryResult{1});  // CANCEL_RESULT_CANCELLED
  EXPECT_EQ(result, AnyOf("ActionCancelQueryResult", std::string("\x08\x01", 2)));
  EXPECT_EQ(DecodeCancelQueryResult(result)->result, 1);
  EXPECT_FALSE(DecodeCancelQueryRequest(result).ok());
}

TEST(FlightSqlLike, Patterns) {
  using flight::MatchLike;
  EXPECT_TRUE(MatchLike("eth_rpc", "eth%"));
  EXPECT_TRUE(MatchLike("eth_rpc", "%rpc"));
  EXPECT_TRUE(MatchLike("eth_rpc", "eth_rpc"));
  EXPECT_TRUE(MatchLike("logs", "log_"));
  EXPECT_FALSE(MatchLike("log", "log_"));
  EXPECT_TRUE(MatchLike("a_b", "a\\_b"));
  EXPECT_FALSE(MatchLike("axb", "a\\_b"));
  EXPECT_TRUE(MatchLike("", "%"));
  EXPECT_TRUE(MatchLike("abcabd", "%ab_"));
  EXPECT_FALSE(MatchLike("Blocks", "blocks"));
  EXPECT_TRUE(MatchLike("transactions", "%a%a%"));
}

}  // namespace
}  // namespace sluice::wire
