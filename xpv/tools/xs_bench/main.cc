// xpv-xs-bench: xpv-xenstored against Xen's C xenstored and an echo ceiling. See
// docs/xenstored-bench.md; `make bench` runs it through scripts/xenstored-bench.sh.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <filesystem>
#include <thread>

#include "xpv/tools/xs_bench/bench.h"

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  using xpv::xs_bench::Seconds;
  // build/bin/ of a checkout; ../shared sits beside the checkout.
  const fs::path bin = fs::read_symlink("/proc/self/exe").parent_path();
  xpv::xs_bench::BenchOptions o;
  o.fill_cpu = static_cast<int>(std::thread::hardware_concurrency()) - 1;
  o.xenstored = (bin / "xpv-xenstored").string();
  o.echo = (bin / "xpv-xs-echo").string();
  o.cxenstored_start =
      (bin / "../../../shared/peers/xenstored/start-cxenstored.sh").lexically_normal().string();

  double load_s = o.load_time.count();
  double watch_s = o.watch_time.count();
  double idle_s = o.idle_time.count();
  double window_s = o.window_time.count();
  double budget_s = o.fill_budget.count();
  bool quick = false;

  CLI::App app{"Benchmarks xpv-xenstored against Xen's C xenstored and an echo ceiling"};
  // A flag given twice takes its last value, so arguments after the script's defaults win.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.add_flag("--quick", quick, "a ~30 s run: shorter loads, smaller stores");
  app.add_option("--xenstored", o.xenstored, "xpv-xenstored binary ('' to leave out)");
  app.add_option("--cxenstored-start", o.cxenstored_start,
                 "start-cxenstored.sh of shared/peers/xenstored ('' to leave out)");
  app.add_option("--echo", o.echo, "xpv-xs-echo binary ('' to leave out)");
  app.add_option("--work-dir", o.work_dir,
                 "folder for sockets and logs (default: a temporary one)");
  app.add_option("--json", o.json_path, "also write the figures and ratios to this JSON file");
  app.add_option("--clients", o.clients, "client counts for the throughput loads")
      ->delimiter(',')
      ->check(CLI::PositiveNumber);
  app.add_option("--rounds", o.rounds, "measurements per figure; each keeps its best")
      ->check(CLI::PositiveNumber);
  app.add_option("--seconds", load_s, "length of each throughput load, per round");
  app.add_option("--value-size", o.shape.value_size, "bytes per value written");
  app.add_option("--watch-seconds", watch_s, "length of the watch-latency run, per round");
  app.add_option("--idle-connections", o.idle_connections, "idle connections for the latency run");
  app.add_option("--idle-seconds", idle_s, "length of each idle-connection latency run, per round");
  app.add_option("--mem-nodes", o.mem_nodes, "store size at which memory per node is measured");
  app.add_option("--create-nodes", o.create_nodes,
                 "store size at which the create rate is measured");
  app.add_option("--window-nodes", o.window_leaves, "nodes per create-rate window");
  app.add_option("--window-seconds", window_s, "longest create-rate window");
  app.add_option("--fill-budget", budget_s, "seconds each daemon may spend filling its store");
  app.add_option("--fanout", o.fanout, "children per directory when filling")
      ->check(CLI::PositiveNumber);
  app.add_option("--pipeline", o.pipeline, "writes in flight when filling (1: synchronous)")
      ->check(CLI::PositiveNumber);
  app.add_option("--fill-cpu", o.fill_cpu,
                 "CPU the filler and the daemon share while filling (-1: unpinned; default: the "
                 "last CPU)");
  CLI11_PARSE(app, argc, argv);

  if (quick) {
    // Quick values apply only where no flag was given.
    auto quick_default = [&](const char* flag, auto& field, auto value) {
      if (app.count(flag) == 0) field = value;
    };
    quick_default("--rounds", o.rounds, 3);
    quick_default("--seconds", load_s, 0.1);
    quick_default("--watch-seconds", watch_s, 0.2);
    quick_default("--idle-seconds", idle_s, 0.1);
    quick_default("--mem-nodes", o.mem_nodes, uint64_t{100'000});
    quick_default("--create-nodes", o.create_nodes, uint64_t{200'000});
    quick_default("--window-nodes", o.window_leaves, uint64_t{10'000});
    quick_default("--window-seconds", window_s, 1.0);
    quick_default("--fill-budget", budget_s, 8.0);
  }
  o.load_time = Seconds(load_s);
  o.watch_time = Seconds(watch_s);
  o.idle_time = Seconds(idle_s);
  o.window_time = Seconds(window_s);
  o.fill_budget = Seconds(budget_s);
  o.shape.max_clients = std::ranges::max(o.clients);
  return xpv::xs_bench::RunBench(o);
}
