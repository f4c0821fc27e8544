#include "launch/cli/options.hpp"

#include <iostream>

#include "kernels/error.hpp"

namespace ringkv::cli {

bool parse_options(CLI::App& app, const std::vector<std::string>& args) {
  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 consumes from the back
  try {
    app.parse(reversed);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return false;
  } catch (const CLI::ParseError& e) {
    throw Error(app.get_name() + ": " + e.what() + " (see " + app.get_name() + " --help)");
  }
  return true;
}

void add_device_option(CLI::App& app, std::string& device, const std::string& help) {
  app.add_option("--device", device, help)->check(CLI::IsMember({"cpu", "gpu"}))->capture_default_str();
}

}  // namespace ringkv::cli
