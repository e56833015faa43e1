#include "flight/command.h"

#include "arrow/status.h"
#include "arrow/util/utf8.h"

namespace sluice::flight {

arrow::Result<wire::Command> CommandFromDescriptor(std::string_view cmd) {
  arrow::util::InitializeUTF8();
  ARROW_ASSIGN_OR_RAISE(auto command, wire::DecodeCommand(cmd));
  if (!command) {
    if (!arrow::util::ValidateUTF8(cmd)) {
      return arrow::Status::Invalid(
          "descriptor command is neither UTF-8 SQL text nor a Flight SQL command");
    }
    return wire::Command{wire::CommandStatementQuery{std::string(cmd)}};
  }
  if (auto* unsupported = std::get_if<wire::UnsupportedCommand>(&*command)) {
    return arrow::Status::NotImplemented(
        "Flight SQL command ", unsupported->name,
        " is not supported here (sluice is read-only); send a query as SQL text, "
        "CommandStatementQuery or a prepared statement");
  }
  if (auto* q = std::get_if<wire::CommandStatementQuery>(&*command)) {
    if (!arrow::util::ValidateUTF8(q->query)) {
      return arrow::Status::Invalid("CommandStatementQuery.query is not UTF-8");
    }
  }
  return std::move(*command);
}

arrow::Result<std::string> SqlFromCommand(std::string_view cmd) {
  ARROW_ASSIGN_OR_RAISE(auto command, CommandFromDescriptor(cmd));
  if (auto* q = std::get_if<wire::CommandStatementQuery>(&command)) return std::move(q->query);
  return arrow::Status::NotImplemented("expected SQL text or a CommandStatementQuery");
}

std::string EncodeCommandStatementQuery(std::string_view sql) {
  return wire::EncodeCommand(wire::CommandStatementQuery{std::string(sql)});
}

}  // namespace sluice::flight
