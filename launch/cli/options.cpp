#include "launch/cli/options.hpp"

#include <iostream>

#include "kernels/error.hpp"

namespace ringkv::cli {

bool parse_options(const std::string& command, const std::string& synopsis, po::options_description& options,
                   const std::vector<std::string>& args, po::variables_map& vm) {
  options.add_options()("help,h", "show this help");
  try {
    po::store(po::command_line_parser(args).options(options).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw Error("ringkv " + command + ": " + e.what() + " (see ringkv " + command + " --help)");
  }
  if (vm.count("help")) {
    std::cout << "usage: ringkv " << command << " " << synopsis << "\n\n" << options << "\n";
    return false;
  }
  return true;
}

}  // namespace ringkv::cli
