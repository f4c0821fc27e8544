#pragma once
// Option parsing shared by the subcommands: Boost.Program_options with --help and clear errors.
#include <boost/program_options.hpp>
#include <string>
#include <vector>

namespace ringkv::cli {

namespace po = boost::program_options;

// Parses args into `vm`; returns false (after printing usage) when --help was asked for.
// Unknown options and bad values throw with the option named.
bool parse_options(const std::string& command, const std::string& synopsis, po::options_description& options,
                   const std::vector<std::string>& args, po::variables_map& vm);

}  // namespace ringkv::cli
