#pragma once
// Option parsing shared by the subcommands (CLI11): --help, and errors that name the option.
#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace ringkv::cli {

// Parses args into the options declared on `app`; returns false (after printing the help) when
// --help was asked for. Unknown options and bad values throw ringkv::Error naming them.
bool parse_options(CLI::App& app, const std::vector<std::string>& args);

// --device: cpu or gpu, into `device`; `help` says what each means to the command.
void add_device_option(CLI::App& app, std::string& device, const std::string& help);

}  // namespace ringkv::cli
