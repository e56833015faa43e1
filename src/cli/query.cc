#include <iostream>

#include "arrow/flight/client.h"
#include "arrow/ipc/dictionary.h"
#include "cli/commands.h"
#include "cli/table_printer.h"

namespace fl = arrow::flight;

namespace sluice::cli {

namespace {

arrow::Status RunQuery(const std::string& server, const std::string& sql) {
  ARROW_ASSIGN_OR_RAISE(auto location, fl::Location::Parse(server));
  ARROW_ASSIGN_OR_RAISE(auto client, fl::FlightClient::Connect(location));
  ARROW_ASSIGN_OR_RAISE(auto info,
                        client->GetFlightInfo(fl::FlightDescriptor::Command(sql)));
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
  std::shared_ptr<arrow::Schema> schema;
  for (const auto& endpoint : info->endpoints()) {
    ARROW_ASSIGN_OR_RAISE(auto reader, client->DoGet(endpoint.ticket));
    ARROW_ASSIGN_OR_RAISE(schema, reader->GetSchema());
    while (true) {
      ARROW_ASSIGN_OR_RAISE(auto chunk, reader->Next());
      if (!chunk.data) break;
      if (chunk.data->num_rows() > 0) batches.push_back(chunk.data);
    }
  }
  if (!schema) {
    arrow::ipc::DictionaryMemo memo;
    ARROW_ASSIGN_OR_RAISE(schema, info->GetSchema(&memo));
  }
  PrintTable(*schema, batches, std::cout);
  return arrow::Status::OK();
}

// The server's message without Flight's transport decorations.
std::string Readable(const arrow::Status& st) {
  std::string msg = st.message();
  for (const char* marker : {". Detail:", "\n"}) {
    auto pos = msg.find(marker);
    if (pos != std::string::npos) msg = msg.substr(0, pos);
  }
  return msg;
}

}  // namespace

void AddQueryCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("query", "Run one SQL query on a running server, print a table");
  auto sql = std::make_shared<std::string>();
  auto server = std::make_shared<std::string>("grpc://localhost:1602");
  cmd->add_option("sql", *sql, "The query, e.g. \"SELECT * FROM eth_rpc.blocks LIMIT 5\"")
      ->required();
  cmd->add_option("-s,--server", *server, "Flight endpoint of the server")->capture_default_str();
  cmd->callback([=] {
    auto st = RunQuery(*server, *sql);
    if (!st.ok()) {
      std::cerr << "error: " << Readable(st) << std::endl;
      *exit_code = 1;
    }
  });
}

}  // namespace sluice::cli
