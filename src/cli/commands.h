// The `sluice` command line: `sluice serve`, `sluice query` and `sluice verify`.
#pragma once

#include "CLI/CLI.hpp"

namespace sluice::cli {

/// \brief Register `serve` on the app; its callback runs the server until SIGINT/SIGTERM.
void AddServeCommand(CLI::App& app, int* exit_code);

/// \brief Register `query`; its callback runs one query against a server and prints it.
void AddQueryCommand(CLI::App& app, int* exit_code);

/// \brief Register `verify`; its callback verifies a dataset's stored blocks
/// (exit 0: all match, 1: a block differs, 2: cannot verify).
void AddVerifyCommand(CLI::App& app, int* exit_code);

}  // namespace sluice::cli
