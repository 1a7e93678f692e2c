#include "xpv/tools/xs_bench/bench.h"

#include <fmt/format.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <thread>

#include "xpv/tools/xs_bench/daemon.h"

namespace xpv::xs_bench {
namespace {

namespace fs = std::filesystem;

enum class Target { kXpv, kCxenstored, kEcho };
constexpr Target kTargets[] = {Target::kXpv, Target::kCxenstored, Target::kEcho};

std::string_view TargetName(Target target) {
  switch (target) {
    case Target::kXpv:
      return "xpv";
    case Target::kCxenstored:
      return "cxenstored";
    case Target::kEcho:
      return "echo";
  }
  return "unknown";
}

std::string Describe(const Error& error) {
  return fmt::format("{} ({})", error.message, std::strerror(error.code));
}

enum class Better { kHigher, kLower };

// Ratio goals, from the issue that asked for this benchmark.
struct Goal {
  Better better;
  double bound;

  bool Met(double value) const {
    return better == Better::kHigher ? value >= bound : value <= bound;
  }
  std::string Text() const {
    return fmt::format("{} {}", better == Better::kHigher ? ">=" : "<=", bound);
  }
};

// `figure` of `target` over `base_figure` of `base`.
struct RatioSpec {
  std::string name;
  std::string figure;
  Target target;
  std::string base_figure;
  Target base;
  std::optional<Goal> goal;
};

struct Ratio {
  const RatioSpec* spec;
  double value;
};

std::string LoadFigure(Op op, int clients) {
  return fmt::format("{}_{}c", OpName(op), clients);
}
std::string CpuFigure(Op op, int clients) {
  return "cpu_" + LoadFigure(op, clients);
}
std::string IdleFigure(int connections) {
  return fmt::format("read_latency_{}idle", connections);
}

std::vector<RatioSpec> RatioSpecs(const BenchOptions& o) {
  constexpr Target kX = Target::kXpv;
  constexpr Target kC = Target::kCxenstored;
  std::vector<RatioSpec> specs;
  for (Op op : kAllOps) {
    for (int n : o.clients) {
      const std::string load = LoadFigure(op, n);
      specs.push_back({load + "_vs_cxenstored", load, kX, load, kC, std::nullopt});
      specs.push_back(
          {load + "_vs_echo", load, kX, load, Target::kEcho, Goal{Better::kHigher, 0.85}});
      const std::string cpu = CpuFigure(op, n);
      specs.push_back({cpu + "_vs_cxenstored", cpu, kX, cpu, kC, Goal{Better::kLower, 0.33}});
    }
  }
  specs.push_back(
      {"watch_p99_vs_cxenstored", "watch_p99", kX, "watch_p99", kC, Goal{Better::kLower, 0.33}});
  specs.push_back({"mem_per_node_vs_cxenstored", "mem_per_node", kX, "mem_per_node", kC,
                   Goal{Better::kLower, 0.5}});
  specs.push_back({"create_full_vs_empty", "create_rate_full", kX, "create_rate_empty", kX,
                   Goal{Better::kHigher, 0.9}});
  specs.push_back({"cxenstored_create_full_vs_empty", "create_rate_full", kC, "create_rate_empty",
                   kC, std::nullopt});
  const std::string idle = IdleFigure(o.idle_connections);
  const std::string idle_none = IdleFigure(0);
  specs.push_back({fmt::format("latency_{}idle_vs_none", o.idle_connections), idle, kX, idle_none,
                   kX, Goal{Better::kLower, 1.2}});
  specs.push_back({fmt::format("cxenstored_latency_{}idle_vs_none", o.idle_connections), idle, kC,
                   idle_none, kC, std::nullopt});
  return specs;
}

std::string FormatValue(double v) {
  if (v >= 1000) return fmt::format("{:.0f}", v);
  if (v >= 10) return fmt::format("{:.1f}", v);
  return fmt::format("{:.2f}", v);
}

std::string JsonString(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\u{:04x}", static_cast<int>(c));
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// Every figure measured, by name and daemon, in the order measured; notes on what was not.
class Report {
 public:
  // Records a measurement. Measured again (another round), the figure keeps the best value: other
  // work on the machine only ever makes a run slower.
  void Add(std::string_view name, std::string_view unit, Better better, Target target,
           double value) {
    const auto [it, inserted] = FindOrAdd(name, unit).values.try_emplace(target, Cell{value});
    double& best = it->second.value;
    if (!inserted) best = better == Better::kHigher ? std::max(best, value) : std::min(best, value);
  }
  // Records `total` over `count` (CPU time over operations). Measured again, the totals add up: the
  // figure is the mean over every round, which a coarse clock resolves better than any one round.
  void AddMean(std::string_view name, std::string_view unit, Target target, double total,
               double count) {
    Cell& cell = FindOrAdd(name, unit).values[target];
    cell.total += total;
    cell.count += count;
    cell.value = cell.total / cell.count;
  }
  void Note(std::string text) { notes_.push_back(std::move(text)); }

  std::vector<Ratio> Ratios(const std::vector<RatioSpec>& specs) {
    std::vector<Ratio> ratios;
    for (const RatioSpec& spec : specs) {
      const std::optional<double> num = Get(spec.figure, spec.target);
      const std::optional<double> den = Get(spec.base_figure, spec.base);
      if (num && den && *den > 0) ratios.push_back({&spec, *num / *den});
    }
    return ratios;
  }

  void Print(std::FILE* out, std::string_view title, const std::vector<Ratio>& ratios) const {
    size_t width = 6;
    for (const Figure& f : figures_) width = std::max(width, f.name.size());
    fmt::print(out, "{}\n\n{:<{}}  {:<12}", title, "figure", width, "unit");
    for (Target t : kTargets) fmt::print(out, " {:>12}", TargetName(t));
    fmt::print(out, "\n");
    for (const Figure& f : figures_) {
      fmt::print(out, "{:<{}}  {:<12}", f.name, width, f.unit);
      for (Target t : kTargets) {
        const auto v = f.values.find(t);
        fmt::print(out, " {:>12}", v == f.values.end() ? "-" : FormatValue(v->second.value));
      }
      fmt::print(out, "\n");
    }
    if (!notes_.empty()) fmt::print(out, "\nnotes:\n");
    for (const std::string& note : notes_) fmt::print(out, "  - {}\n", note);

    fmt::print(out, "\ngoals (xpv over the other daemon, or over itself):\n");
    for (const Ratio& r : ratios) {
      if (!r.spec->goal) continue;
      fmt::print(out, "  {:<36} {:>8.3f}  goal {:<8} {}\n", r.spec->name, r.value,
                 r.spec->goal->Text(), r.spec->goal->Met(r.value) ? "met" : "MISSED");
    }
    fmt::print(out, "\n");
    for (const Ratio& r : ratios) fmt::print(out, "ratio {} {:.3f}\n", r.spec->name, r.value);
  }

  Status WriteJson(const std::string& path, const std::vector<Ratio>& ratios) const {
    std::string json = "{\n  \"figures\": [";
    for (size_t i = 0; i < figures_.size(); ++i) {
      const Figure& f = figures_[i];
      json += fmt::format("{}\n    {{\"name\": {}, \"unit\": {}", i ? "," : "", JsonString(f.name),
                          JsonString(f.unit));
      for (const auto& [target, cell] : f.values) {
        json += fmt::format(", {}: {}", JsonString(TargetName(target)), cell.value);
      }
      json += "}";
    }
    json += "\n  ],\n  \"ratios\": [";
    for (size_t i = 0; i < ratios.size(); ++i) {
      const Ratio& r = ratios[i];
      json += fmt::format("{}\n    {{\"name\": {}, \"value\": {}", i ? "," : "",
                          JsonString(r.spec->name), r.value);
      if (r.spec->goal) {
        json += fmt::format(", \"goal\": {}, \"met\": {}", JsonString(r.spec->goal->Text()),
                            r.spec->goal->Met(r.value));
      }
      json += "}";
    }
    json += "\n  ],\n  \"notes\": [";
    for (size_t i = 0; i < notes_.size(); ++i) {
      json += fmt::format("{}\n    {}", i ? "," : "", JsonString(notes_[i]));
    }
    json += "\n  ]\n}\n";
    std::FILE* f = std::fopen(path.c_str(), "w");
    if (f == nullptr) return Err(errno, "cannot open the JSON output");
    const bool written = std::fwrite(json.data(), 1, json.size(), f) == json.size();
    if (std::fclose(f) != 0 || !written) return Err(EIO, "cannot write the JSON output");
    return Ok();
  }

 private:
  struct Cell {
    double value = 0;
    double total = 0;  // AddMean's sums
    double count = 0;
  };
  struct Figure {
    std::string name;
    std::string unit;
    std::map<Target, Cell> values;
  };

  Figure& FindOrAdd(std::string_view name, std::string_view unit) {
    for (Figure& f : figures_) {
      if (f.name == name) return f;
    }
    return figures_.emplace_back(Figure{std::string(name), std::string(unit), {}});
  }
  std::optional<double> Get(std::string_view name, Target target) const {
    for (const Figure& f : figures_) {
      if (f.name != name) continue;
      const auto v = f.values.find(target);
      if (v != f.values.end()) return v->second.value;
    }
    return std::nullopt;
  }

  std::vector<Figure> figures_;
  std::vector<std::string> notes_;
};

// The folder for sockets and logs; a temporary one is removed with everything in it.
class WorkDir {
 public:
  static Result<WorkDir> Create(const std::string& requested) {
    if (!requested.empty()) {
      std::error_code ec;
      fs::create_directories(requested, ec);
      if (ec) return Err(ec.value(), "cannot create the work folder");
      return WorkDir(fs::absolute(requested), Owned::kNo);
    }
    std::string pattern = (fs::temp_directory_path() / "xpv-xs-bench.XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) return Err(errno, "mkdtemp");
    return WorkDir(pattern, Owned::kYes);
  }
  WorkDir(WorkDir&& other) noexcept
      : path_(std::move(other.path_)), owned_(std::exchange(other.owned_, Owned::kNo)) {}
  ~WorkDir() {
    std::error_code ignored;
    if (owned_ == Owned::kYes) fs::remove_all(path_, ignored);
  }
  const fs::path& path() const { return path_; }

 private:
  enum class Owned { kNo, kYes };
  WorkDir(fs::path path, Owned owned) : path_(std::move(path)), owned_(owned) {}
  fs::path path_;
  Owned owned_;
};

// Confines the calling thread to one CPU until destroyed, then gives it back the CPUs it had.
class ThreadPin {
 public:
  static Result<ThreadPin> Create(int cpu) {
    ThreadPin pin;
    if (::sched_getaffinity(0, sizeof(pin.before_), &pin.before_) != 0) {
      return Err(errno, "sched_getaffinity");
    }
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (::sched_setaffinity(0, sizeof(set), &set) != 0) return Err(errno, "sched_setaffinity");
    pin.pinned_ = true;
    return pin;
  }
  ThreadPin(ThreadPin&& other) noexcept
      : before_(other.before_), pinned_(std::exchange(other.pinned_, false)) {}
  ~ThreadPin() {
    if (pinned_) ::sched_setaffinity(0, sizeof(before_), &before_);
  }

 private:
  ThreadPin() = default;
  cpu_set_t before_{};
  bool pinned_ = false;
};

// One daemon under test. `daemon` is empty once it has failed or is done with.
struct Subject {
  Target target;
  std::optional<Daemon> daemon;
};

// Which subjects a phase runs on: the echo server stores nothing, so only throughput applies to it.
enum class Which { kAll, kStores };

class Bench {
 public:
  Bench(const BenchOptions& options, fs::path work_dir)
      : o_(options), work_dir_(std::move(work_dir)) {}

  int Run() {
    RaiseFdLimit();
    for (Target target : kTargets) Start(target);
    Each(Which::kAll, "prepare store",
         [&](Subject& s) { return PrepareStore(s.daemon->socket(), o_.shape); });
    // Daemon after daemon, load by load, round after round: a change in the machine's other work
    // touches every daemon, and each figure keeps its best round.
    for (int round = 1; round <= o_.rounds; ++round) {
      for (Op op : kAllOps) {
        for (int n : o_.clients) {
          Each(Which::kAll, RoundLabel(LoadFigure(op, n), round),
               [&](Subject& s) { return MeasureLoad(s, op, n); });
        }
      }
    }
    for (int round = 1; round <= o_.rounds; ++round) {
      Each(Which::kStores, RoundLabel("watch latency", round),
           [&](Subject& s) { return MeasureWatch(s); });
      Each(Which::kStores, RoundLabel("idle connections", round),
           [&](Subject& s) { return MeasureIdle(s); });
    }
    Each(Which::kStores, "fill", [&](Subject& s) {
      Status status = MeasureFill(s);
      s.daemon.reset();  // give its memory back before the next daemon fills
      return status;
    });
    subjects_.clear();

    const std::vector<RatioSpec> specs = RatioSpecs(o_);
    const std::vector<Ratio> ratios = report_.Ratios(specs);
    report_.Print(stdout, Title(), ratios);
    if (!o_.json_path.empty()) {
      if (Status s = report_.WriteJson(o_.json_path, ratios); !s) {
        fmt::print(stderr, "xpv-xs-bench: {}: {}\n", o_.json_path, Describe(s.error()));
        return 1;
      }
    }
    return failed_ ? 1 : 0;
  }

 private:
  std::string Title() const {
    std::string clients;
    for (int n : o_.clients) clients += fmt::format("{}{}", clients.empty() ? "" : ",", n);
    return fmt::format(
        "xenstored benchmark: {} CPUs; best of {} rounds; loads of {:.2f} s at {} clients, "
        "synchronous; {} B values; directory of {}",
        std::thread::hardware_concurrency(), o_.rounds, o_.load_time.count(), clients,
        o_.shape.value_size, o_.shape.directory_entries);
  }

  std::string RoundLabel(std::string_view what, int round) const {
    return fmt::format("{} (round {}/{})", what, round, o_.rounds);
  }

  // The idle-connection load needs a descriptor per connection, here and in each daemon we start.
  void RaiseFdLimit() {
    const rlim_t needed = static_cast<rlim_t>(o_.idle_connections) + 256;
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= needed) return;
    limit.rlim_cur = std::min(needed, limit.rlim_max);
    ::setrlimit(RLIMIT_NOFILE, &limit);
    if (limit.rlim_cur < needed) {
      report_.Note(
          fmt::format("open-file limit {} is too low for {} idle connections: raise ulimit -n",
                      limit.rlim_cur, o_.idle_connections));
    }
  }

  const std::string& PathOf(Target target) const {
    switch (target) {
      case Target::kXpv:
        return o_.xenstored;
      case Target::kCxenstored:
        return o_.cxenstored_start;
      case Target::kEcho:
        return o_.echo;
    }
    XPV_CHECK(false);
  }

  void Start(Target target) {
    const std::string name(TargetName(target));
    const std::string& path = PathOf(target);
    if (path.empty()) {
      report_.Note(fmt::format("{} left out: no path given", name));
      return;
    }
    if (::access(path.c_str(), X_OK) != 0) {
      if (target == Target::kCxenstored) {
        report_.Note(fmt::format(
            "Xen's C xenstored not benchmarked: {} not found (it comes from ../shared/peers, which "
            "a plain clone lacks); xpv is compared with the echo ceiling only",
            path));
      } else {
        report_.Note(fmt::format("{} not benchmarked: {} not found or not executable", name, path));
        failed_ |= target == Target::kXpv;
      }
      return;
    }
    Result<Daemon> daemon = Launch(target, name);
    if (!daemon) {
      report_.Note(fmt::format("{} did not start: {}", name, Describe(daemon.error())));
      failed_ = true;
      return;
    }
    subjects_.push_back(Subject{target, std::move(*daemon)});
  }

  // Starts an instance of `target` with its socket and log in the work folder's `instance`.
  Result<Daemon> Launch(Target target, const std::string& instance) {
    const std::string& path = PathOf(target);
    const fs::path dir = work_dir_ / instance;
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return Err(ec.value(), "cannot create the daemon's folder");
    const std::string socket = (dir / "socket").string();
    const std::string log = (dir / "daemon.log").string();
    fmt::print(stderr, "[{}] starting {}\n", instance, path);
    switch (target) {
      case Target::kXpv:
        return Daemon::Spawn({path, "--socket", socket}, socket, log);
      case Target::kCxenstored:
        return Daemon::StartWithScript(path, dir.string());  // logs to DIR/xenstored.log
      case Target::kEcho:
        return Daemon::Spawn({path, "--socket", socket, "--read-reply-bytes",
                              std::to_string(ReadReplyBytes(o_.shape)), "--directory-reply-bytes",
                              std::to_string(DirectoryReplyBytes(o_.shape))},
                             socket, log);
    }
    return Err(EINVAL, "unknown target");
  }

  // Runs `measure` on every subject still running; a failure is noted and stops that daemon.
  void Each(Which which, std::string_view what, const std::function<Status(Subject&)>& measure) {
    for (Subject& s : subjects_) {
      if (!s.daemon || (which == Which::kStores && s.target == Target::kEcho)) continue;
      fmt::print(stderr, "[{}] {}\n", TargetName(s.target), what);
      if (Status status = measure(s); !status) {
        report_.Note(
            fmt::format("{}: {} failed: {}", TargetName(s.target), what, Describe(status.error())));
        failed_ = true;
        s.daemon.reset();
      }
    }
  }

  Status MeasureLoad(Subject& s, Op op, int clients) {
    const Daemon& d = *s.daemon;
    XPV_ASSIGN_OR_RETURN(Seconds cpu_before, d.CpuTime());
    XPV_ASSIGN_OR_RETURN(LoadResult load, RunLoad(d.socket(), o_.shape, op, clients, o_.load_time));
    XPV_ASSIGN_OR_RETURN(Seconds cpu_after, d.CpuTime());
    if (load.ops == 0)
      return Ok();  // starved by other work on the machine: this round says nothing
    report_.Add(LoadFigure(op, clients), "ops/s", Better::kHigher, s.target, load.OpsPerSecond());
    report_.AddMean(CpuFigure(op, clients), "daemon us/op", s.target,
                    (cpu_after - cpu_before).count() * 1e6, static_cast<double>(load.ops));
    if (load.retries > 0) {
      report_.Note(fmt::format("{}: {} retried {} transactions after EAGAIN", TargetName(s.target),
                               LoadFigure(op, clients), load.retries));
    }
    return Ok();
  }

  Status MeasureWatch(Subject& s) {
    XPV_ASSIGN_OR_RETURN(LatencyStats latency,
                         RunWatchLatency(s.daemon->socket(), o_.watch_time, o_.watch_events));
    report_.Add("watch_p50", "us", Better::kLower, s.target, latency.p50_us);
    report_.Add("watch_p99", "us", Better::kLower, s.target, latency.p99_us);
    return Ok();
  }

  Status MeasureIdle(Subject& s) {
    const std::string& socket = s.daemon->socket();
    auto read_load = [&] { return RunLoad(socket, o_.shape, Op::kRead, 1, o_.idle_time); };
    XPV_ASSIGN_OR_RETURN(LoadResult none, read_load());
    XPV_ASSIGN_OR_RETURN(std::vector<xenstore::Client> idle,
                         OpenIdleConnections(socket, o_.idle_connections));
    XPV_ASSIGN_OR_RETURN(LoadResult with_idle, read_load());
    if (none.ops == 0 || with_idle.ops == 0) return Ok();  // starved, as in MeasureLoad
    report_.Add(IdleFigure(0), "us", Better::kLower, s.target, none.MicrosPerOp());
    report_.Add(IdleFigure(o_.idle_connections), "us", Better::kLower, s.target,
                with_idle.MicrosPerOp());
    return Ok();
  }

  Status MeasureFill(Subject& s) {
    const Daemon& d = *s.daemon;
    // The empty-store create rate is measured on a second, fresh instance, in windows that
    // alternate with those on the full store: measured minutes apart instead, the two would see
    // different amounts of the machine's other work.
    XPV_ASSIGN_OR_RETURN(Daemon fresh,
                         Launch(s.target, fmt::format("{}-empty", TargetName(s.target))));
    // Left to the scheduler, the filler and the daemon land on one CPU or on two, and the rate
    // jumps between those placements (xpv: 150k to 1.1M creates/s on a 2-CPU VM) by more than the
    // store's size moves it.
    std::optional<ThreadPin> pin;
    if (o_.fill_cpu >= 0) {
      XPV_TRY(d.PinTo(o_.fill_cpu));
      XPV_TRY(fresh.PinTo(o_.fill_cpu));
      XPV_ASSIGN_OR_RETURN(ThreadPin pinned, ThreadPin::Create(o_.fill_cpu));
      pin.emplace(std::move(pinned));
    }
    XPV_ASSIGN_OR_RETURN(NodeFiller filler,
                         NodeFiller::Create(d.socket(), o_.shape, o_.fanout, o_.pipeline));
    XPV_ASSIGN_OR_RETURN(NodeFiller fresh_filler,
                         NodeFiller::Create(fresh.socket(), o_.shape, o_.fanout, o_.pipeline));
    auto window = [&](NodeFiller& f, uint64_t leaves) {
      return f.CreateLeaves(leaves, After(o_.window_time));
    };

    // Grow the store: to mem_nodes for the memory figure, then on to create_nodes.
    XPV_ASSIGN_OR_RETURN(uint64_t rss_before, d.RssBytes());
    std::vector<FillWindow> growth;
    const auto deadline = After(o_.fill_budget);
    auto fill_to = [&](uint64_t nodes) -> Status {
      while (filler.nodes() < nodes && Clock::now() < deadline) {
        XPV_ASSIGN_OR_RETURN(FillWindow w,
                             window(filler, std::min(o_.window_leaves, nodes - filler.nodes())));
        growth.push_back(w);
      }
      return Ok();
    };
    XPV_TRY(fill_to(o_.mem_nodes));
    if (growth.empty()) return Err(EINVAL, "no node created (fill budget or --mem-nodes is zero)");
    XPV_ASSIGN_OR_RETURN(uint64_t rss_after, d.RssBytes());
    const uint64_t mem_nodes = filler.nodes();
    report_.Add("mem_nodes", "nodes", Better::kHigher, s.target, static_cast<double>(mem_nodes));
    report_.Add("mem_per_node", "bytes", Better::kLower, s.target,
                (static_cast<double>(rss_after) - static_cast<double>(rss_before)) /
                    static_cast<double>(mem_nodes));
    XPV_TRY(fill_to(o_.create_nodes));
    report_.Note(CreateCurve(s.target, growth));
    if (filler.nodes() < o_.create_nodes) {
      report_.Note(fmt::format(
          "{} reached {} of {} nodes in the {:.0f} s fill budget: memory measured at {} nodes, "
          "full-store create rate from {} nodes",
          TargetName(s.target), filler.nodes(), o_.create_nodes, o_.fill_budget.count(), mem_nodes,
          filler.nodes()));
    }

    // Then the create rate, full store and empty one by turns; each keeps its best window.
    const uint64_t full_at = filler.nodes();
    for (int round = 0; round < o_.rounds; ++round) {
      XPV_ASSIGN_OR_RETURN(FillWindow full, window(filler, o_.window_leaves));
      XPV_ASSIGN_OR_RETURN(FillWindow empty, window(fresh_filler, o_.window_leaves));
      report_.Add("create_rate_empty", "creates/s", Better::kHigher, s.target,
                  empty.LeavesPerSecond());
      report_.Add("create_rate_full", "creates/s", Better::kHigher, s.target,
                  full.LeavesPerSecond());
    }
    report_.Add("create_full_at", "nodes", Better::kHigher, s.target, static_cast<double>(full_at));
    return Ok();
  }

  // A few windows spread over the fill: how the create rate moves as the store grows.
  static std::string CreateCurve(Target target, const std::vector<FillWindow>& windows) {
    constexpr size_t kPoints = 6;
    std::string text = fmt::format("{} create rate by store size:", TargetName(target));
    size_t last = windows.size();
    for (size_t p = 0; p < kPoints; ++p) {
      const size_t i = p * (windows.size() - 1) / (kPoints - 1);
      if (i == last) continue;
      last = i;
      text += fmt::format(" {}k:{:.0f}/s", windows[i].nodes_before / 1000,
                          windows[i].LeavesPerSecond());
    }
    return text;
  }

  const BenchOptions& o_;
  fs::path work_dir_;
  Report report_;
  std::vector<Subject> subjects_;
  bool failed_ = false;
};

}  // namespace

int RunBench(const BenchOptions& options) {
  Result<WorkDir> work_dir = WorkDir::Create(options.work_dir);
  if (!work_dir) {
    fmt::print(stderr, "xpv-xs-bench: {}\n", Describe(work_dir.error()));
    return 1;
  }
  return Bench(options, work_dir->path()).Run();
}

}  // namespace xpv::xs_bench
