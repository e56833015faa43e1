#include "cli/commands.h"
#include "cli/roles.h"
#include "storage/segment_store.h"

int main(int argc, char** argv) {
  CLI::App app{"sluice: SQL over live blockchain data, streamed as Apache Arrow over Flight"};
  app.require_subcommand(1);
  int exit_code = 0;
  sluice::cli::AddServeCommand(app, &exit_code);
  sluice::cli::AddQueryCommand(app, &exit_code);
  sluice::cli::AddExtractCommand(app, &exit_code);
  sluice::cli::AddMigrateCommand(app, &exit_code);
  sluice::cli::AddVerifyCommand(app, &exit_code);
  CLI11_PARSE(app, argc, argv);
  sluice::storage::ShutdownS3();  // every store is gone by now
  return exit_code;
}
