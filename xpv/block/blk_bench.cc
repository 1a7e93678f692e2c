// xpv-blk-bench: what a PV disk costs. On one image file and in one run:
//   baseline  fio with io_uring directly on the file;
//   map       blkfront -> xpv-blkback on xpv-hv, the backend mapping grants (persistent);
//   copy      the same with the backend in copy mode (it never holds the guest's memory).
// Workloads: 4 KiB random read at QD1 and QD32, 128 KiB sequential read and write at QD8.
// Prints a table, `ratio NAME VALUE` lines (xpv / baseline), and writes a gnuplot SVG.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <array>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "xpv/block/testing/vbd_fixture.h"
#include "xpv/block/workload.h"

namespace {

using xpv::block::Workload;
using xpv::block::WorkloadResult;

struct Options {
  std::string dir = "/var/tmp/xpv-blk-bench";
  uint64_t size_mib = 256;
  double seconds = 3;
  bool direct = true;
  std::string plot;  // default: <dir>/blk-bench.svg
};

std::vector<Workload> Workloads(const Options& o) {
  return {
      {.name = "4k-randread-qd1", .random = true, .block_size = 4096, .queue_depth = 1},
      {.name = "4k-randread-qd32", .random = true, .block_size = 4096, .queue_depth = 32},
      {.name = "128k-seqread-qd8", .random = false, .block_size = 128 << 10, .queue_depth = 8},
      {.name = "128k-seqwrite-qd8",
       .random = false,
       .write = true,
       .block_size = 128 << 10,
       .queue_depth = 8},
  };
  (void)o;
}

bool MakeImage(const std::string& path, uint64_t bytes) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && static_cast<uint64_t>(st.st_size) == bytes) return true;
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  // Real data, not a sparse file: reads of holes would measure nothing.
  std::vector<char> buf(1 << 20);
  std::mt19937_64 rng(42);
  for (auto& c : buf) c = static_cast<char>(rng());
  bool ok = true;
  for (uint64_t off = 0; ok && off < bytes; off += buf.size())
    ok = ::pwrite(fd, buf.data(), buf.size(), static_cast<off_t>(off)) ==
         static_cast<ssize_t>(buf.size());
  ok = ok && ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

// fio's terse output (v3): field 8 is read IOPS, 7 read KiB/s; 49 and 48 the same for writes.
std::optional<WorkloadResult> RunFio(const Options& o, const std::string& image,
                                     const Workload& w) {
  const std::string cmd = fmt::format(
      "fio --name=baseline --filename={} --ioengine=io_uring --rw={} --bs={} --iodepth={} "
      "--direct={} --time_based --runtime={} --ramp_time=0.3 --size={}M --minimal 2>/dev/null",
      image, w.random ? (w.write ? "randwrite" : "randread") : (w.write ? "write" : "read"),
      w.block_size, w.queue_depth, o.direct ? 1 : 0, o.seconds, o.size_mib);
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return std::nullopt;
  std::string out;
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  if (::pclose(p) != 0) return std::nullopt;
  std::vector<std::string> f;
  size_t at = 0;
  while (at <= out.size()) {
    size_t semi = out.find(';', at);
    if (semi == std::string::npos) semi = out.size();
    f.push_back(out.substr(at, semi - at));
    at = semi + 1;
  }
  if (f.size() < 50) return std::nullopt;
  WorkloadResult r;
  r.seconds = o.seconds;
  const double iops = std::stod(f[w.write ? 48 : 7]);
  r.ops = static_cast<uint64_t>(iops * o.seconds);
  r.bytes = r.ops * w.block_size;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"xpv-blk-bench: blkfront/xpv-blkback on xpv-hv against fio on the same file"};
  app.add_option("--dir", o.dir, "where the image goes")->capture_default_str();
  app.add_option("--size-mib", o.size_mib, "image size")->capture_default_str();
  app.add_option("--seconds", o.seconds, "run time of each workload")->capture_default_str();
  bool buffered = false;
  app.add_flag("--buffered", buffered, "page-cache I/O on both sides (default: O_DIRECT)");
  app.add_option("--plot", o.plot, "the SVG to write (default: DIR/blk-bench.svg)");
  CLI11_PARSE(app, argc, argv);
  o.direct = !buffered;
  if (o.plot.empty()) o.plot = o.dir + "/blk-bench.svg";
  spdlog::set_level(spdlog::level::warn);

  std::filesystem::create_directories(o.dir);
  const std::string image = o.dir + "/disk.img";
  std::printf("image %s, %llu MiB, %s I/O, %.1f s per workload\n", image.c_str(),
              static_cast<unsigned long long>(o.size_mib), o.direct ? "O_DIRECT" : "buffered",
              o.seconds);
  if (!MakeImage(image, o.size_mib << 20)) {
    std::fprintf(stderr, "xpv-blk-bench: cannot make %s: %s\n", image.c_str(),
                 std::strerror(errno));
    return 1;
  }
  const std::vector<Workload> workloads = Workloads(o);
  std::map<std::string, std::array<std::optional<WorkloadResult>, 3>> results;  // base, map, copy

  for (const Workload& w : workloads) {
    std::printf("  fio %-20s ...", w.name.c_str());
    std::fflush(stdout);
    results[w.name][0] = RunFio(o, image, w);
    std::printf(results[w.name][0] ? " %.0f IOPS\n" : " failed (is fio installed?)\n",
                results[w.name][0] ? results[w.name][0]->iops() : 0.0);
  }

  using xpv::platform::sim::MappingMode;
  const std::pair<const char*, MappingMode> modes[] = {{"map", MappingMode::kMap},
                                                       {"copy", MappingMode::kCopy}};
  for (size_t m = 0; m < 2; ++m) {
    xpv::block::testing::VbdFixtureOptions fo;
    fo.backend_mode = modes[m].second;
    fo.backend.caching = o.direct ? xpv::block::Caching::kDirect : xpv::block::Caching::kBuffered;
    auto fx = xpv::block::testing::VbdFixture::Start(fo);
    if (!fx) {
      std::fprintf(stderr, "xpv-blk-bench: sim: %s\n", std::string(fx.error().message).c_str());
      return 1;
    }
    auto id = (*fx)->AddVbd({.size_bytes = o.size_mib << 20, .image = image});
    if (!id)
      return std::fprintf(stderr, "xpv-blk-bench: vbd: %s\n",
                          std::string(id.error().message).c_str()),
             1;
    auto front = (*fx)->ConnectFront(*id, {.queues = 1, .ring_page_order = 2});
    if (!front)
      return std::fprintf(stderr, "xpv-blk-bench: connect: %s\n",
                          std::string(front.error().message).c_str()),
             1;
    for (const Workload& w : workloads) {
      std::printf("  xpv %-4s %-20s ...", modes[m].first, w.name.c_str());
      std::fflush(stdout);
      auto r = xpv::block::RunWorkload(**front, [&] {
        Workload x = w;
        x.seconds = o.seconds;
        return x;
      }());
      if (!r) {
        std::printf(" failed: %s\n", std::string(r.error().message).c_str());
        continue;
      }
      results[w.name][m + 1] = *r;
      std::printf(" %.0f IOPS, p50 %.0f us\n", r->iops(), r->p50_us);
    }
    (void)(*front)->Close();
  }

  std::printf("\n%-20s %14s %14s %14s %9s %9s\n", "workload", "fio (baseline)", "xpv map",
              "xpv copy", "map/fio", "copy/fio");
  auto cell = [](const std::optional<WorkloadResult>& r, bool mib) {
    if (!r) return std::string("-");
    return mib ? fmt::format("{:.0f} MiB/s", r->mib_per_s())
               : fmt::format("{:.0f} IOPS", r->iops());
  };
  std::vector<std::string> ratios;
  for (const Workload& w : workloads) {
    auto& r = results[w.name];
    const bool mib = w.block_size >= (64 << 10);
    auto ratio = [&](int i) -> std::optional<double> {
      if (!r[0] || !r[i] || r[0]->iops() <= 0) return std::nullopt;
      return r[i]->iops() / r[0]->iops();
    };
    auto fmt_ratio = [](std::optional<double> v) {
      return v ? fmt::format("{:.2f}", *v) : std::string("-");
    };
    std::printf("%-20s %14s %14s %14s %9s %9s\n", w.name.c_str(), cell(r[0], mib).c_str(),
                cell(r[1], mib).c_str(), cell(r[2], mib).c_str(), fmt_ratio(ratio(1)).c_str(),
                fmt_ratio(ratio(2)).c_str());
    if (auto v = ratio(1)) ratios.push_back(fmt::format("ratio map/{} {:.3f}", w.name, *v));
    if (auto v = ratio(2)) ratios.push_back(fmt::format("ratio copy/{} {:.3f}", w.name, *v));
  }
  std::printf("\n");
  for (const auto& line : ratios) std::printf("%s\n", line.c_str());

  // The plot: each workload's throughput relative to fio, per transport.
  const std::string data = o.dir + "/blk-bench.dat";
  if (FILE* f = std::fopen(data.c_str(), "w")) {
    for (const Workload& w : workloads) {
      auto& r = results[w.name];
      auto rel = [&](int i) {
        return r[0] && r[i] && r[0]->iops() > 0 ? r[i]->iops() / r[0]->iops() : 0.0;
      };
      std::fprintf(f, "%s 1.0 %.3f %.3f\n", w.name.c_str(), rel(1), rel(2));
    }
    std::fclose(f);
    const std::string gp = fmt::format(
        "set terminal svg size 800,420; set output '{}'; set style data histograms; "
        "set style histogram clustered gap 1; set style fill solid 0.8 border -1; "
        "set ylabel 'throughput relative to fio on the file'; set yrange [0:*]; set grid ytics; "
        "set title 'xpv-blk-bench ({}, {} MiB image)'; "
        "plot '{}' using 2:xtic(1) title 'fio (baseline)', '' using 3 title 'xpv map', "
        "'' using 4 title 'xpv copy'",
        o.plot, o.direct ? "O_DIRECT" : "buffered", o.size_mib, data);
    const std::string cmd = "gnuplot -e \"" + gp + "\" 2>/dev/null";
    if (std::system(cmd.c_str()) == 0) std::printf("plot: %s\n", o.plot.c_str());
  }
  return 0;
}
