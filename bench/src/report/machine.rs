//! The page's opening: what the benchmarks are and how they run, and the machine they ran on.

use std::fmt::Write as _;
use std::path::Path;

use crate::sizes;

pub(super) fn intro(md: &mut String) {
    md.push_str(
        "# Benchmarks\n\n\
         What the hub costs in time, memory and money, measured on one machine. Produced by\n\n\
         ```sh\n./scripts/bench\n```\n\n\
         which builds the function binaries (`cargo build --release`) and the benchmark crate\n\
         (`bench/`, binary `hub-bench`), installs the pinned moto and cargo-lambda into\n\
         `.tools/venv` when missing, runs each benchmark (`hub-bench coldstart | worker |\n\
         fanout | cost | sizes | large-drive | push | delivery`) against a fresh moto server\n\
         on a free loopback port, each writing `target/bench-results/<name>.json`, and writes\n\
         this file (`hub-bench report`).\n\
         The scale can be changed with the `BENCH_*` variables listed in `scripts/bench`. All\n\
         traffic stays on 127.0.0.1; every run is bounded in count and time; nothing asserts a\n\
         duration: this is a measurement, not a test. The figures are from a 2-core virtual\n\
         machine that may have been compiling something else at the same time (see the load\n\
         averages): read them as orders of magnitude and ratios, not as AWS latencies.\n\n",
    );
}

fn command_output(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "?".into())
}

fn proc_field(file: &str, field: &str) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == field).then(|| value.trim().to_string())
    })
}

pub(super) fn machine(md: &mut String, dir: &Path, sizes: Option<&sizes::Results>) {
    let memory = proc_field("/proc/meminfo", "MemTotal")
        .and_then(|v| v.trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or("?".into(), |kib| {
            format!("{:.1} GiB", kib / 1024.0 / 1024.0)
        });
    let rows = [
        (
            "date",
            chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        ),
        ("CPUs (`nproc`)", command_output("nproc", &[])),
        (
            "CPU model",
            proc_field("/proc/cpuinfo", "model name").unwrap_or_else(|| "?".into()),
        ),
        ("memory", memory),
        ("kernel", command_output("uname", &["-sr"])),
        ("rustc", command_output("rustc", &["--version"])),
        (
            "hub commit",
            format!(
                "{} (plus uncommitted changes, if any)",
                command_output("git", &["rev-parse", "--short", "HEAD"])
            ),
        ),
        (
            "moto",
            std::env::var("BENCH_MOTO_VERSION").unwrap_or_else(|_| "?".into()),
        ),
        (
            "build time (this run)",
            std::env::var("BENCH_BUILD_SECONDS").map_or("?".into(), |s| format!("{s} s")),
        ),
        (
            "benchmark time (this run)",
            std::env::var("BENCH_RUN_SECONDS").map_or("?".into(), |s| {
                match sizes.and_then(|r| r.build_seconds) {
                    Some(cross) => format!("{s} s, of which {cross:.0} s the arm64 cross-build"),
                    None => format!("{s} s"),
                }
            }),
        ),
    ];
    md.push_str("## Machine\n\n| | |\n|---|---|\n");
    for (name, value) in rows {
        let _ = writeln!(md, "| {name} | {value} |");
    }
    let _ = writeln!(
        md,
        "\nRaw results: `{}`. Load averages (1, 5, 15 min) before and after each benchmark are in its section.\n",
        dir.display()
    );
}
