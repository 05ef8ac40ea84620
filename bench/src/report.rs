//! BENCHMARKS.md from the results the benchmarks left behind: the machine, one table per
//! benchmark, and what the figures call for. A benchmark that did not run is named as such.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::coldstart::{self, REFERENCE_INIT_MS, REFERENCE_MEMORY_MB};
use crate::cost::{self, Dollars};
use crate::support::{read_results, Result};
use crate::{delivery, fanout, large_drive, push_latency, sizes, worker};

pub struct Options {
    pub results_dir: PathBuf,
    pub output: PathBuf,
}

/// The estimates of docs/DEPLOY.md (dollars per million account-syncs), to compare with.
const DEPLOY_NO_CHANGES: f64 = 10.6;
const DEPLOY_TEN_CHANGES: f64 = 18.7;
/// The issue's target for a first sync on moto against the raw `BatchWriteItem` loop.
const WORKER_RAW_TARGET: f64 = 1.2;
/// The issue's target for the local first sync: within this multiple of fetching its pages.
const LOCAL_FETCH_TARGET: f64 = 3.0;
/// Write units of an incremental sync with 10 changes measured on 2026-11-24, before the
/// change feed existed: the reference for the feed's cost.
const PRE_FEED_TEN_CHANGES_WRU: f64 = 12.0;
/// API Gateway's HTTP API gives up on an integration after this long.
const API_GATEWAY_LIMIT_SECONDS: f64 = 29.0;

/// Every benchmark's results that `target/bench-results` holds.
struct Figures {
    cold: Option<coldstart::Results>,
    fan: Option<fanout::Results>,
    work: Option<worker::Results>,
    money: Option<cost::Results>,
    size: Option<sizes::Results>,
    large: Option<large_drive::Results>,
    push: Option<push_latency::Results>,
    delivery: Option<delivery::Results>,
}

pub fn run(options: Options) -> Result<String> {
    let dir = &options.results_dir;
    let figures = Figures {
        cold: read_results(dir, "coldstart"),
        fan: read_results(dir, "fanout"),
        work: read_results(dir, "worker"),
        money: read_results(dir, "cost"),
        size: read_results(dir, "sizes"),
        large: read_results(dir, "large-drive"),
        push: read_results(dir, "push"),
        delivery: read_results(dir, "delivery"),
    };

    let mut md = String::new();
    intro(&mut md);
    machine(&mut md, dir, figures.size.as_ref());
    section_coldstart(&mut md, figures.cold.as_ref());
    section_fanout(&mut md, figures.fan.as_ref());
    section_worker(&mut md, figures.work.as_ref());
    section_cost(&mut md, figures.money.as_ref());
    section_sizes(&mut md, figures.size.as_ref());
    section_large_drive(&mut md, figures.large.as_ref());
    section_push(&mut md, figures.push.as_ref());
    section_delivery(&mut md, figures.delivery.as_ref());
    observations(&mut md, &figures);
    std::fs::write(&options.output, &md)?;
    Ok(md)
}

fn intro(md: &mut String) {
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

fn machine(md: &mut String, dir: &Path, sizes: Option<&sizes::Results>) {
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

fn not_run(md: &mut String, name: &str) {
    let _ = writeln!(
        md,
        "**Not run** (no `{name}.json`: the benchmark failed or was skipped; see the output of `./scripts/bench`).\n"
    );
}

fn section_coldstart(md: &mut String, results: Option<&coldstart::Results>) {
    md.push_str("## 1. Cold start\n\n");
    let Some(r) = results else {
        return not_run(md, "coldstart");
    };
    let _ = writeln!(
        md,
        "Each function's release binary (`cargo build --release`: opt-level s, LTO, one codegen unit, \
         stripped) started {} times as Lambda starts it: a stand-in of the Lambda Runtime API on \
         127.0.0.1 hands out one event (`events/`), the `AWS_LAMBDA_*` variables are set, and the hub \
         runs in `aws` mode against moto, so it reads its configuration and builds its DynamoDB, KMS \
         and SQS clients; `provider-webhooks` answers Dropbox's challenge (Dropbox configured, as \
         the template does) and `app-webhooks` signs and delivers one event to a webhook receiver \
         on 127.0.0.1; an answer with an HTTP error or a failed batch item counts as a failed run. \
         **Native {} binaries**: arm64 cannot run on this machine, and a process on \
         a local VM is not a Firecracker micro-VM, so compare ratios, not absolute values. \
         *Init* is spawn to the first `next` poll; *first answer* is spawn to the first response \
         (the handler's calls to moto included); *peak RSS* is `VmHWM` read right after the first \
         response. Load average before/after: {} / {}.\n",
        r.runs_per_function, r.arch, r.loadavg_before, r.loadavg_after
    );
    md.push_str(
        "| function | event | init median / p90 (ms) | first answer median / p90 (ms) | peak RSS median / p90 (MB) | binary (MB) | failed runs |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for f in &r.functions {
        let _ = writeln!(
            md,
            "| `{}` | `{}` | {:.1} / {:.1} | {:.1} / {:.1} | {:.1} / {:.1} | {:.1} | {} |",
            f.function,
            f.event,
            f.init_ms.median,
            f.init_ms.p90,
            f.first_answer_ms.median,
            f.first_answer_ms.p90,
            f.peak_rss_mb.median,
            f.peak_rss_mb.p90,
            f.binary_bytes as f64 / 1e6,
            f.failed_runs
        );
    }
    let target_init = 2.0 * REFERENCE_INIT_MS;
    let target_rss = 2.0 * REFERENCE_MEMORY_MB;
    let _ = writeln!(
        md,
        "\nReference: a hello-world Rust function on arm64 in maxday's lambda-perf, about {REFERENCE_INIT_MS:.0} ms \
         of init and {REFERENCE_MEMORY_MB:.0} MB; the target is within 2x of it ({target_init:.0} ms, {target_rss:.0} MB).\n"
    );
    md.push_str("| function | init median / 28 ms | peak RSS median / 30 MB |\n|---|---|---|\n");
    for f in &r.functions {
        let _ = writeln!(
            md,
            "| `{}` | {:.2} | {:.2} |",
            f.function,
            f.init_ms.median / target_init,
            f.peak_rss_mb.median / target_rss
        );
    }
    md.push('\n');
}

fn section_fanout(md: &mut String, results: Option<&fanout::Results>) {
    md.push_str("## 2. Fan-out at scale\n\n");
    let Some(r) = results else {
        return not_run(md, "fanout");
    };
    let _ = writeln!(
        md,
        "N active accounts (half Google, half OneDrive) in the store; then `hub::fanout::start` as \
         `POST /sync` calls it (a {} s budget, then a `continue_fanout` message on the queue), then \
         each continuation as it comes back from the queue, run by `hub::fanout::fan_out` with the \
         worker's {} s budget, until one job per account is queued. A consumer plays the worker \
         fleet: it receives everything (SQS `ReceiveMessage` on moto; locally, a stand-in of the \
         Invoke API that the local queue calls), counts the jobs, hands the continuations on and \
         deletes the jobs without syncing them. Each backend runs twice over the same accounts: \
         through `POST /sync`, and through the EventBridge schedule's path, whose first \
         invocation has the deadline `sync-fanout` derives from its real {} s timeout (less its \
         {} s reserve: {} s of fan-out before the continuation). *Raw* is the same number of job-sized messages \
         sent by a tight `SendMessageBatch` loop (10 per call, 8 calls in flight as the hub's SQS \
         queue does) with the same consumer. Load average before/after: {} / {}.\n",
        hub::fanout::HTTP_BUDGET.as_secs(),
        (hub::queue::local::WORKER_TIMEOUT - hub::sync::RESERVE).as_secs(),
        hub::fanout::FUNCTION_TIMEOUT.as_secs(),
        hub::fanout::RESERVE.as_secs(),
        (hub::fanout::FUNCTION_TIMEOUT - hub::fanout::RESERVE).as_secs(),
        r.loadavg_before,
        r.loadavg_after
    );
    md.push_str(
        "| backend | path | accounts | first invocation (s) | jobs in the first | continuations | every job queued (s) | of which waiting for continuations (s) | every job delivered (s) | jobs/s | raw `SendMessageBatch` (s) | hub / raw |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for run in &r.runs {
        let raw = run.raw_send_seconds;
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.2} | {} | {} | {:.1} | {:.1} | {:.1} ({} jobs) | {:.0} | {} | {} |",
            run.backend,
            run.path,
            run.accounts,
            run.answer_seconds,
            run.jobs_in_answer,
            run.continuations,
            run.all_queued_seconds,
            run.continuation_wait_seconds,
            run.all_delivered_seconds,
            run.jobs_delivered,
            run.accounts as f64 / run.all_queued_seconds,
            raw.map_or("-".into(), |s| format!("{s:.1}")),
            raw.map_or("-".into(), |s| format!("{:.2}", run.all_queued_seconds / s)),
        );
    }
    md.push_str(
        "\nInvocations against their deadlines: the first is `sync-fanout`'s (Lambda timeout \
         and the budget the hub keeps inside it), each continuation runs in the worker (its \
         timeout, less the worker's reserve).\n\n\
         | backend | path | accounts | invocations (first + continuations) | every job queued (s) | first invocation (s) / budget / deadline | longest continuation (s) / budget / deadline |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for run in &r.runs {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} (1 + {}) | {:.1} | {:.2} / {:.0} / {:.0} | {} |",
            run.backend,
            run.path,
            run.accounts,
            1 + run.continuations,
            run.continuations,
            run.all_queued_seconds,
            run.answer_seconds,
            run.first_budget_seconds,
            run.first_deadline_seconds,
            if run.continuations == 0 {
                "-".to_string()
            } else {
                format!(
                    "{:.2} / {:.0} / {:.0}",
                    run.longest_continuation_seconds,
                    run.continuation_budget_seconds,
                    run.continuation_deadline_seconds
                )
            },
        );
    }
    md.push('\n');
    for run in r.runs.iter().filter(|run| run.path != "schedule") {
        let _ = writeln!(
            md,
            "- {}: {} accounts seeded in {:.1} s ({}).",
            run.backend, run.accounts, run.seed_seconds, run.seed_method
        );
    }
    let scaled = r
        .runs
        .iter()
        .find(|run| run.backend.starts_with("aws") && run.accounts < 100_000);
    if let Some(run) = scaled {
        let raw_rate = run
            .raw_send_seconds
            .map_or(0.0, |s| run.accounts as f64 / s);
        let _ = writeln!(
            md,
            "- **Scaled down on moto** to {} accounts. moto answers a `Query` on the index by scanning \
             the whole table, and its SQS scans the whole queue for every message sent and every \
             receipt deleted (the consumer runs 32 receive loops to keep the queue short): even the \
             raw loop moves only {raw_rate:.0} messages/s here, so 100,000 accounts would take about \
             {:.0} minutes for the hub and about as long again for the raw loop. The local backend \
             runs the full 100,000. On moto the figures measure the hub's overhead against the \
             emulator's own speed (the *hub / raw* ratio), not DynamoDB's and SQS's latencies.",
            run.accounts,
            100_000.0 / (run.accounts as f64 / run.all_queued_seconds) / 60.0
        );
    }
    md.push('\n');
}

fn section_worker(md: &mut String, results: Option<&worker::Results>) {
    md.push_str("## 3. Worker\n\n");
    let Some(r) = results else {
        return not_run(md, "worker");
    };
    let _ = writeln!(
        md,
        "One OneDrive account, connected through the hub's own login against the testkit stand-in \
         of Microsoft Graph, whose drive holds N files served as delta pages of {}. Each \
         `hub::sync::run` runs in a child process (`hub-bench worker-child`) so that its peak RSS \
         (`VmHWM`) is the sync's alone; the stand-in lives in the parent. Tracing is **not** \
         initialised in the child (the worker logs one line per file at info level). The \
         incremental sync follows {} renamed files through the saved delta link. *Fetch only* is the \
         same pages through a plain reqwest loop (no parsing, no storage). *Raw writes* (moto only) \
         are the same file items, read back as the hub stored them and written under another \
         account id on the same moto by a tight `BatchWriteItem` loop (25 per call, {} calls in \
         flight as the hub's store keeps): what the store can do with nothing of the sync around \
         it; the target is the first sync within {WORKER_RAW_TARGET}x of it. The local backend keeps \
         the index in LMDB, one write transaction (one durable commit) per page (ext4 here); its \
         target is the first sync within {LOCAL_FETCH_TARGET}x of *fetch only*. Load average \
         before/after: {} / {}.\n",
        r.page_size, r.changes, worker::HUB_BATCHES_IN_FLIGHT, r.loadavg_before, r.loadavg_after
    );
    md.push_str(
        "| backend | sync | drive files | pages | files synced | time (s) | files/s | peak RSS (MB) | RSS before the sync (MB) | RSS at the end: own / mapped files (MB) | fetch only (s) | sync / fetch | raw writes (s) | sync / raw |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for run in &r.runs {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {:.2} | {:.0} | {:.1} | {:.1} | {:.1} / {:.1} | {} | {} | {} | {} |",
            run.backend,
            run.kind,
            run.drive_files,
            run.pages,
            run.files_synced,
            run.seconds,
            run.files_synced as f64 / run.seconds,
            run.peak_rss_mb,
            run.before_sync_rss_mb,
            run.anon_rss_mb,
            run.file_rss_mb,
            match (run.fetch_only_seconds, run.fetch_only_pages) {
                (Some(s), Some(pages)) => format!("{s:.2} ({pages} pages)"),
                _ => "-".into(),
            },
            run.fetch_only_seconds
                .map_or("-".into(), |s| format!("{:.1}", run.seconds / s)),
            run.raw_write_seconds
                .map_or("-".into(), |s| format!("{s:.2}")),
            run.raw_write_seconds
                .map_or("-".into(), |s| format!("{:.2}", run.seconds / s)),
        );
    }
    let aws_largest = r
        .runs
        .iter()
        .filter(|run| run.backend.starts_with("aws"))
        .map(|run| run.drive_files)
        .max();
    if aws_largest.is_some_and(|files| files < 100_000) {
        md.push_str("\nThe AWS (moto) runs are **scaled down** (see `BENCH_WORKER_AWS`).\n");
    }
    if aws_largest.is_some() {
        md.push_str(
            "\nOn moto every `BatchWriteItem` is stored by Python: the AWS times are the emulator's \
             speed more than DynamoDB's; the peak RSS is the worker's own.\n",
        );
    }
    md.push('\n');
}

fn dollars_row(
    md: &mut String,
    name: &str,
    pick: fn(&Dollars) -> f64,
    scenarios: &[cost::Scenario],
) {
    let cells: Vec<String> = scenarios
        .iter()
        .map(|s| format!("{:.2}", pick(&s.dollars_per_million)))
        .collect();
    let _ = writeln!(md, "| {name} | {} |", cells.join(" | "));
}

fn section_cost(md: &mut String, results: Option<&cost::Results>) {
    md.push_str("## 4. Cost per account-sync\n\n");
    let Some(r) = results else {
        return not_run(md, "cost");
    };
    let _ = writeln!(
        md,
        "Requests counted by a proxy between the AWS SDK and moto (by `X-Amz-Target`, or `Action=`), \
         DynamoDB capacity units estimated from the items in each request and answer (on-demand \
         rules: 1 WRU per started KB written, 2x in a transaction, plus 1 WRU for the \
         `by-provider` index when an account write creates or changes its keys or `status`, the \
         only attributes the index projects; for the change feed's `by-seq` index, which holds \
         every file item with all its attributes, 1 WRU per started KB of each entry put and 1 \
         for each entry a new `seq` replaces or a delete removes; 1 RRU per started 4 KB read \
         strongly consistent, half when eventually consistent). An account-sync = its share of a scheduled fan-out over {} \
         accounts + its share of one worker invocation of a batch of {} (the event source \
         mapping's `ReceiveMessage` and `DeleteMessageBatch`, one Lambda request) + the worker's \
         sync of a OneDrive drive of {} files synced before. Log bytes are the hub's own log lines \
         at info level, formatted as `hub::telemetry` does, counted instead of printed. Tokens are \
         the stand-in's (about 40 characters), so account items are smaller than with real \
         Microsoft tokens (1.5 to 2.5 KB).\n",
        r.fanout_accounts, r.batch, r.drive_files
    );
    let names: Vec<&str> = r.scenarios.iter().map(|s| s.name.as_str()).collect();
    let mut operations: Vec<&String> = r
        .scenarios
        .iter()
        .flat_map(|s| s.per_sync.requests.keys())
        .collect();
    operations.sort();
    operations.dedup();
    let _ = writeln!(md, "| per account-sync | {} |", names.join(" | "));
    let _ = writeln!(md, "|---|{}", "---|".repeat(names.len()));
    for op in operations {
        let cells: Vec<String> = r
            .scenarios
            .iter()
            .map(|s| format!("{:.3}", s.per_sync.requests.get(op).copied().unwrap_or(0.0)))
            .collect();
        let _ = writeln!(md, "| {op} | {} |", cells.join(" | "));
    }
    let row = |md: &mut String, name: &str, f: &dyn Fn(&cost::Scenario) -> String| {
        let cells: Vec<String> = r.scenarios.iter().map(f).collect();
        let _ = writeln!(md, "| {name} | {} |", cells.join(" | "));
    };
    row(md, "DynamoDB write units (est.)", &|s| {
        format!("{:.2}", s.per_sync.write_units)
    });
    row(md, "of which file items (table)", &|s| {
        format!("{:.2}", s.per_sync.file_write_units)
    });
    row(md, "of which the feed's `by-seq` index", &|s| {
        format!("{:.2}", s.per_sync.feed_index_write_units)
    });
    row(md, "of which lease / account writes", &|s| {
        format!("{:.2}", s.per_sync.account_write_units)
    });
    row(md, "of which other items", &|s| {
        format!("{:.2}", other_write_units(&s.per_sync))
    });
    row(md, "DynamoDB read units (est.)", &|s| {
        format!("{:.2}", s.per_sync.read_units)
    });
    row(md, "largest account item (bytes)", &|s| {
        s.per_sync.largest_item_bytes.to_string()
    });
    row(md, "log bytes", &|s| format!("{:.0}", s.log_bytes_per_sync));
    row(md, "wall time here (ms)", &|s| {
        format!("{:.1}", s.wall_ms_per_sync)
    });

    let _ = writeln!(
        md,
        "\nDollars per million account-syncs (us-east-1 list prices: KMS $3 per million requests; \
         DynamoDB on demand $0.625 per million WRU, $0.125 per million RRU; SQS $0.40 per million \
         requests; Lambda $0.20 per million requests and arm64 $0.0000133334 per GB-s, with an \
         **assumed** {} s billed per account at {} MB as in docs/DEPLOY.md; CloudWatch Logs $0.50 \
         per GB):\n",
        r.assumed_seconds_per_sync, r.worker_memory_mb
    );
    let _ = writeln!(
        md,
        "| $ per million account-syncs | {} |",
        names.join(" | ")
    );
    let _ = writeln!(md, "|---|{}", "---|".repeat(names.len()));
    dollars_row(md, "KMS", |d| d.kms, &r.scenarios);
    dollars_row(md, "DynamoDB writes", |d| d.dynamodb_writes, &r.scenarios);
    dollars_row(md, "DynamoDB reads", |d| d.dynamodb_reads, &r.scenarios);
    dollars_row(md, "SQS", |d| d.sqs, &r.scenarios);
    dollars_row(md, "Lambda requests", |d| d.lambda_requests, &r.scenarios);
    dollars_row(
        md,
        "Lambda duration (assumed)",
        |d| d.lambda_duration,
        &r.scenarios,
    );
    dollars_row(md, "CloudWatch Logs", |d| d.logs, &r.scenarios);
    dollars_row(md, "**total**", |d| d.total, &r.scenarios);
    let _ = writeln!(
        md,
        "\ndocs/DEPLOY.md estimated about ${DEPLOY_NO_CHANGES} per million syncs with no changes (one \
         token refresh per sync) and about ${DEPLOY_TEN_CHANGES} with 10 changes. Not counted here: \
         idle polling of the event source mapping, the KMS key, alarms and storage (fixed monthly \
         costs, listed in docs/DEPLOY.md).\n"
    );
}

/// The write units of neither file items, the feed's index nor accounts (claims, marks...).
fn other_write_units(counts: &crate::proxy::Counts) -> f64 {
    counts.write_units
        - counts.file_write_units
        - counts.feed_index_write_units
        - counts.account_write_units
}

fn section_sizes(md: &mut String, results: Option<&sizes::Results>) {
    md.push_str("## 5. Release sizes\n\n");
    let Some(r) = results else {
        return not_run(md, "sizes");
    };
    let how = match r.build_seconds {
        Some(s) => format!("built by this run in {s:.0} s"),
        None => "reused: newer than every source file".into(),
    };
    let _ = writeln!(
        md,
        "`cargo lambda build --release --arm64 --output-format zip` (zig cross-build; {how}).\n"
    );
    md.push_str("| function | arm64 `bootstrap.zip` (bytes) | MB | native x86_64 binary (MB) |\n|---|---|---|---|\n");
    for f in &r.functions {
        let _ = writeln!(
            md,
            "| `{}` | {} | {:.2} | {} |",
            f.function,
            f.zip_bytes,
            f.zip_bytes as f64 / 1e6,
            f.native_binary_bytes
                .map_or("-".into(), |b| format!("{:.2}", b as f64 / 1e6))
        );
    }
    md.push('\n');
}

fn observations(md: &mut String, figures: &Figures) {
    md.push_str(
        "## What the figures call for\n\n\
         Generated from the figures above. An earlier run (2026-11-24) led to three changes, made \
         in the hub and measured here: a sync's last cursor and its outcome are one account write; \
         the `by-provider` index projects only the keys and `status`; `POST /sync` has a 3 s budget, \
         checked every 100 jobs instead of every 500 accounts. The run of 2026-11-25 led to two \
         more, made in this round and measured here: the worker lists the next page while it \
         stores the current one (the cursor still moves only after the page it passes is stored), \
         for the first sync on moto against the raw `BatchWriteItem` loop; and the local store keeps \
         its file index and change feed in LMDB, one transaction per page, instead of one JSON file \
         and one fsync per entry (a first sync of 100,000 files locally was 89x its fetch loop). The \
         other points are open suggestions, with the reason they are not made yet.\n\n",
    );
    if let Some(r) = &figures.cold {
        observe_coldstart(md, r);
    }
    if let Some(r) = &figures.work {
        observe_worker(md, r);
    }
    if let Some(r) = &figures.large {
        observe_large_drive(md, r);
    }
    if let Some(r) = &figures.fan {
        observe_fanout(md, r);
    }
    if let Some(r) = &figures.money {
        observe_cost(md, r);
    }
    if let Some(r) = &figures.push {
        observe_push(md, r);
    }
    if let Some(r) = &figures.delivery {
        observe_delivery(md, r);
    }
    if let Some(r) = &figures.size {
        let largest = r.functions.iter().map(|f| f.zip_bytes).max().unwrap_or(0);
        let _ = writeln!(
            md,
            "- **Package size**: the largest zip is {:.1} MB, far under Lambda's 50 MB zipped limit; \
             every function carries the whole `hub` library and the three AWS SDK clients, and at \
             this size that costs nothing worth splitting for.",
            largest as f64 / 1e6
        );
    }
    md.push('\n');
}

fn observe_large_drive(md: &mut String, r: &large_drive::Results) {
    for run in &r.runs {
        let budget = r.timeout_seconds - r.reserve_seconds;
        let _ = writeln!(
            md,
            "- **A drive of {} files, {}**: {} in {} invocation{} ({:.0} s of wall time), the longest \
             {:.1} s against a {budget:.0} s budget and a {:.0} s timeout; {} timeouts, {} failures, \
             {} receives{}. {}",
            r.files,
            run.backend,
            if run.completed { "synced" } else { "**not synced**" },
            run.invocations,
            if run.invocations == 1 { "" } else { "s" },
            run.wall_seconds,
            run.longest_invocation_seconds,
            r.timeout_seconds,
            run.timeouts,
            run.failures,
            run.receives,
            if run.max_receive_count > 1 {
                format!(" (a message received {} times)", run.max_receive_count)
            } else if run.invocations == 1 {
                " (the drive fit in one invocation: nothing was requeued)".to_string()
            } else {
                " (each message once: a sync out of time is requeued as a new message, not \
                 redelivered)"
                    .to_string()
            },
            if run.longest_invocation_seconds > budget {
                format!(
                    "The longest ran {:.1} s past its budget, the page being stored when time ran \
                     out, inside the {:.0} s reserve.",
                    run.longest_invocation_seconds - budget,
                    r.reserve_seconds
                )
            } else {
                String::new()
            }
        );
    }
}

fn observe_push(md: &mut String, r: &push_latency::Results) {
    let slowest = r
        .cases
        .iter()
        .max_by(|a, b| a.latency_ms.median.total_cmp(&b.latency_ms.median));
    if let Some(case) = slowest {
        let _ = writeln!(
            md,
            "- **Push latency is the queue's, not the hub's**: the slowest median from notification \
             to index is {:.0} ms ({}, {}). In AWS the worker's event source mapping waits up to \
             `MaximumBatchingWindowInSeconds` (5 s) to fill a batch when the queue is quiet, which \
             is most of what an app would see. Not changed: push jobs share the sync queue, and a \
             shorter window there means more, smaller batches for the scheduled syncs too; a \
             queue of its own for push jobs with no window is the change if apps need sub-second \
             pushes.",
            case.latency_ms.median, case.provider, case.backend
        );
    }
}

fn observe_delivery(md: &mut String, r: &delivery::Results) {
    let _ = writeln!(
        md,
        "- **A delivered event costs ${:.2} per million**, nearly all of it SQS: each event is \
         queued by its own `SendMessageBatch` call as it happens (receives and deletes are shared \
         by the ten events of a batch); delivering took {:.2} s of invocation time for {} events, \
         so Lambda duration is noise next to it. Queueing a sync's events together would divide \
         the sending part by up to ten: not worth the delay at this price.",
        r.dollars_per_million.total, r.invocation_seconds, r.verified
    );
}

fn observe_coldstart(md: &mut String, r: &coldstart::Results) {
    let target_init = 2.0 * REFERENCE_INIT_MS;
    let target_rss = 2.0 * REFERENCE_MEMORY_MB;
    let worst_init = r
        .functions
        .iter()
        .map(|f| f.init_ms.median)
        .fold(0.0, f64::max);
    let worst_p90 = r
        .functions
        .iter()
        .map(|f| f.init_ms.p90)
        .fold(0.0, f64::max);
    let worst_rss = r
        .functions
        .iter()
        .map(|f| f.peak_rss_mb.median)
        .fold(0.0, f64::max);
    let within = worst_init <= target_init && worst_rss <= target_rss;
    let _ = writeln!(
        md,
        "- **Cold start is {} 2x the hello-world reference**: the slowest median init is {worst_init:.1} ms \
         (worst p90 {worst_p90:.1} ms) against {target_init:.0} ms, and the largest median peak RSS \
         {worst_rss:.1} MB against {target_rss:.0} MB. {} These are native x86_64 figures on a VM, not \
         arm64 in Firecracker: check the `Init Duration` of the REPORT lines after the first \
         deployment before relying on the margin.",
        if within { "within" } else { "**not within**" },
        if within {
            "Reading the configuration and building the three SDK clients adds little to a bare \
             runtime (`users`, whose first answer calls no AWS service, starts as fast as the others), \
             so nothing calls for building clients lazily."
        } else {
            "Look at what runs before the first poll (SDK configuration loading, registry building) \
             and build what the first invocation does not need lazily."
        }
    );
}

fn observe_worker(md: &mut String, r: &worker::Results) {
    // Flatness is judged on the worker's own memory (anonymous RSS at the end of the sync):
    // the peak RSS also counts the file pages it maps, locally LMDB's map of the index,
    // which grow with the index and which the kernel can drop.
    let own = |run: &worker::SyncRun| {
        if run.anon_rss_mb > 0.0 {
            run.anon_rss_mb
        } else {
            run.peak_rss_mb
        }
    };
    let mut spans = Vec::new();
    let mut mapped = Vec::new();
    let mut flat = true;
    for backend in ["local", "aws (moto)"] {
        let firsts = r
            .runs
            .iter()
            .filter(|run| run.kind == "first" && run.backend == backend);
        let small = firsts.clone().min_by_key(|run| run.drive_files);
        let large = firsts.max_by_key(|run| run.drive_files);
        let (Some(small), Some(large)) = (small, large) else {
            continue;
        };
        if small.drive_files == large.drive_files {
            continue;
        }
        let growth = own(large) - own(small);
        flat &= growth <= 0.25 * own(small);
        spans.push(format!(
            "{backend}: {:.1} MB for {} files, {:.1} MB for {} ({growth:+.1} MB; peak RSS {:.1} and \
             {:.1} MB)",
            own(small),
            small.drive_files,
            own(large),
            large.drive_files,
            small.peak_rss_mb,
            large.peak_rss_mb
        ));
        if large.file_rss_mb - small.file_rss_mb > 0.25 * small.file_rss_mb.max(1.0) {
            mapped.push(format!(
                "{backend}: {:.1} MB of mapped files at {} files, {:.1} MB at {}",
                small.file_rss_mb, small.drive_files, large.file_rss_mb, large.drive_files
            ));
        }
    }
    if !spans.is_empty() {
        let _ = writeln!(
            md,
            "- **Worker memory is {}**: its own memory (anonymous RSS) at the end of the first sync, \
             {}. The worker holds one page of 1,000 entries at a time; {}{}",
            if flat { "flat as the drive grows" } else { "**not flat**" },
            spans.join("; "),
            if flat {
                "what little grows is allocator and thread-pool warm-up, not per-file state. Memory \
                 needs are far below the template's 256 MB (keep it for the CPU share Lambda gives \
                 with it, not for space)."
            } else {
                "something accumulates per page: find it before raising the function's memory."
            },
            if mapped.is_empty() {
                String::new()
            } else {
                format!(
                    " What grows with the drive is mapped file pages ({}): locally, LMDB's memory map \
                     of the index, page cache the kernel can drop, counted in the peak RSS; the \
                     worker in Lambda stores in DynamoDB and maps no index.",
                    mapped.join("; ")
                )
            }
        );
    }
    let largest_local = r
        .runs
        .iter()
        .filter(|run| run.kind == "first" && run.backend == "local")
        .max_by_key(|run| run.drive_files);
    if let Some(run) = largest_local {
        if let Some(fetch) = run.fetch_only_seconds {
            let ratio = run.seconds / fetch;
            let within = ratio <= LOCAL_FETCH_TARGET;
            let _ = writeln!(
                md,
                "- **Local first sync against the fetch loop, {} files: {ratio:.1}x, {} the \
                 {LOCAL_FETCH_TARGET}x target** ({:.2} s against {fetch:.2} s to fetch the pages; \
                 {:.3} ms per file). {}",
                run.files_synced,
                if within { "within" } else { "not within" },
                run.seconds,
                run.seconds * 1000.0 / run.files_synced.max(1) as f64,
                if within {
                    "The local store writes a page in one LMDB transaction, where it wrote one JSON \
                     file and one fsync per entry before (38.5 s, 89x, on 2026-11-25): a laptop \
                     indexes a large drive about as fast as the stand-in serves it."
                } else {
                    "The store still sets the pace: profile the page's transaction (JSON encoding, \
                     the feed key moves) before the provider's share."
                }
            );
        }
    }
    let largest_aws = r
        .runs
        .iter()
        .filter(|run| run.kind == "first" && run.backend.starts_with("aws"))
        .max_by_key(|run| run.drive_files);
    if let Some(run) = largest_aws {
        let calls = run.files_synced.div_ceil(25);
        let _ = writeln!(
            md,
            "- **A first sync writes one `BatchWriteItem` per 25 entries**: {} files took {:.1} s on moto \
             ({calls} calls, 4 in flight). At an assumed 10 ms per call on DynamoDB (an estimate, not \
             measured here) that is about {:.0} s, inside the worker's 120 s timeout; drives of more \
             than about a million files would not finish in one invocation and rely on the resumable \
             cursor (each page stored before the cursor that follows it) across redeliveries. More \
             batches in flight, or a first sync split into page-range jobs, would shorten it.",
            run.files_synced,
            run.seconds,
            calls as f64 * 0.010 / 4.0
        );
    }
    for run in r.runs.iter().filter(|run| run.kind == "first") {
        let Some(raw) = run.raw_write_seconds else {
            continue;
        };
        let ratio = run.seconds / raw;
        let within = ratio <= WORKER_RAW_TARGET;
        let _ = writeln!(
            md,
            "- **First sync against the raw `BatchWriteItem` loop, {} files on moto: {ratio:.2}x, {} \
             the {WORKER_RAW_TARGET}x target** ({:.1} s against {raw:.1} s for the same items). {}",
            run.files_synced,
            if within { "within" } else { "not within" },
            run.seconds,
            if within {
                "The sync adds little to the store's own cost: fetching the next page while the \
                 current one is stored hides the provider's time."
            } else {
                "The difference is what the sync adds to the writes: fetching and parsing pages \
                 (overlapped with the writes of the page before), the cursor's account write per \
                 page, and any wait between pages."
            }
        );
    }
    for backend in ["local", "aws (moto)"] {
        let incrementals: Vec<_> = r
            .runs
            .iter()
            .filter(|run| run.kind == "incremental" && run.backend == backend)
            .collect();
        let (Some(small), Some(large)) = (
            incrementals.iter().min_by_key(|run| run.drive_files),
            incrementals.iter().max_by_key(|run| run.drive_files),
        ) else {
            continue;
        };
        let grows = large.seconds > 3.0 * small.seconds.max(0.01);
        let _ = writeln!(
            md,
            "- **Incremental sync, {backend}**: {} changes took {:.2} s on a drive of {} files and \
             {:.2} s on one of {} ({} page each, through the saved delta link). {}",
            large.files_synced,
            small.seconds,
            small.drive_files,
            large.seconds,
            large.drive_files,
            large.pages,
            match (grows, backend) {
                (false, _) => "It does not depend on the drive's size.",
                (true, "local") => {
                    "It grows with the drive: something in the local store reads the whole index; \
                     find it."
                }
                (true, _) => {
                    "The time grows with the table, not with the sync: each sync asks the `by-seq` \
                     index for the account's highest sequence number (one `Query`, `Limit` 1, \
                     before it numbers new entries), which moto answers by walking every item of \
                     the table (here the drive's entries and the raw loop's copy of them) and \
                     sorting the account's (moto 5.2's `Table.query` on an index), and DynamoDB \
                     by reading one index entry. Locally, where the index is a B-tree, \
                     the same step stays flat."
                }
            }
        );
    }
}

fn observe_fanout(md: &mut String, r: &fanout::Results) {
    let budget = hub::fanout::HTTP_BUDGET.as_secs_f64();
    for run in &r.runs {
        let rate = run.accounts as f64 / run.all_queued_seconds;
        let raw = run.raw_send_seconds.map_or(String::new(), |raw| {
            format!(
                "; {:.2}x the time of the raw `SendMessageBatch` loop: the hub adds little to the \
                 queue's own cost",
                run.all_queued_seconds / raw
            )
        });
        let scheduled = run.path == "schedule";
        let what = if run.continuations == 0 {
            format!(
                "every job was queued by the first invocation, which ended after {:.1} s ({rate:.0} jobs/s{raw})",
                run.answer_seconds
            )
        } else {
            format!(
                "the first invocation ended after {:.1} s ({}) with {} \
                 jobs; {} continuation{} queued the rest, every job after {:.0} s ({rate:.0} jobs/s{raw})",
                run.answer_seconds,
                match (scheduled, run.answer_seconds < API_GATEWAY_LIMIT_SECONDS) {
                    (true, _) => "no caller waits for it".to_string(),
                    (false, true) => {
                        format!("the 202, inside API Gateway's {API_GATEWAY_LIMIT_SECONDS:.0} s")
                    }
                    (false, false) => format!(
                        "the 202, **outside** API Gateway's {API_GATEWAY_LIMIT_SECONDS:.0} s"
                    ),
                },
                run.jobs_in_answer,
                run.continuations,
                if run.continuations == 1 { "" } else { "s" },
                run.all_queued_seconds
            )
        };
        let past = run.answer_seconds > run.first_deadline_seconds
            || run.longest_continuation_seconds > run.continuation_deadline_seconds;
        let deadlines = format!(
            "; the first invocation took {:.1} s of its {:.0} s budget ({:.0} s deadline){}",
            run.answer_seconds,
            run.first_budget_seconds,
            run.first_deadline_seconds,
            if run.continuations == 0 {
                String::new()
            } else {
                format!(
                    ", the longest continuation {:.1} s of {:.0} s ({:.0} s deadline)",
                    run.longest_continuation_seconds,
                    run.continuation_budget_seconds,
                    run.continuation_deadline_seconds
                )
            }
        );
        let _ = writeln!(
            md,
            "- **Fan-out, {} via {} with {} accounts**: {what}{deadlines}{}.",
            run.backend,
            run.path,
            run.accounts,
            if past {
                " (**an invocation ran past its deadline**)"
            } else {
                ""
            }
        );
    }
    if let Some(slowest) = r
        .runs
        .iter()
        .filter(|run| run.path != "schedule")
        .max_by(|a, b| a.answer_seconds.total_cmp(&b.answer_seconds))
    {
        if slowest.answer_seconds > budget {
            let _ = writeln!(
                md,
                "- **The answer time is the budget plus one chunk** (changed): `POST /sync` reads the \
                 clock every 100 jobs (ten `SendMessageBatch` calls) and hands the rest to a \
                 continuation after {budget:.0} s, so it answered after {:.1} s at most (on {}), \
                 whatever the number of accounts. The earlier run, with a 10 s budget checked every \
                 500 accounts, answered after 12.6 s on moto: the caller waited for nothing, since the \
                 continuation carries the rest either way.",
                slowest.answer_seconds, slowest.backend
            );
        }
    }
    let locals: Vec<&fanout::Run> = r
        .runs
        .iter()
        .filter(|run| run.backend == "local" && run.path != "schedule")
        .collect();
    let small = locals.iter().min_by_key(|run| run.accounts);
    let large = locals.iter().max_by_key(|run| run.accounts);
    let pair = small.zip(large).filter(|(s, l)| l.accounts > s.accounts);
    if let Some((small, large)) = pair {
        let rate = |run: &fanout::Run| run.accounts as f64 / run.all_queued_seconds;
        let slows = rate(large) < 0.7 * rate(small);
        let _ = writeln!(
            md,
            "- **The local store lists the whole account directory for every page**: `list_accounts` \
             reads all the file names (and sorts those after the cursor) to return 500, so the work per \
             page grows with the number of accounts: {:.0} jobs/s at {} accounts, {:.0} jobs/s at {}. {}",
            rate(small),
            small.accounts,
            rate(large),
            large.accounts,
            if slows {
                "Harmless for development; a local backend meant to hold many accounts needs a sorted \
                 index, or one directory walk per fan-out."
            } else {
                "At these sizes the cost is still small next to reading the records; it only matters \
                 for far larger local stores."
            }
        );
    }
    md.push_str(
        "- **Continuations share the queue with the jobs** (a design inference, not measured here: the \
         benchmark's consumer takes every message at once). In AWS a `continue_fanout` message waits \
         behind the jobs queued before it. With the event source mapping capped at 5 concurrent \
         batches of 10, each running 4 syncs at a time, the workers drain a few tens of jobs a \
         second (at an assumed 0.4 s per sync), so behind tens of thousands of jobs the rest of the \
         accounts may not even be queued for many minutes. A small \
         queue of its own for continuations (or the fan-out invoking itself asynchronously) would \
         keep the fan-out's progress independent of the sync backlog. Not made yet: it needs a \
         second queue (or `lambda:InvokeFunction`) in the template and a setting beyond the \
         contract's `SYNC_QUEUE_URL`; it matters from tens of thousands of accounts on.\n",
    );
}

fn observe_cost(md: &mut String, r: &cost::Results) {
    for s in &r.scenarios {
        let d = &s.dollars_per_million;
        let parts = [
            ("KMS", d.kms),
            ("DynamoDB", d.dynamodb_writes + d.dynamodb_reads),
            ("SQS", d.sqs),
            (
                "Lambda (duration assumed)",
                d.lambda_requests + d.lambda_duration,
            ),
            ("CloudWatch Logs", d.logs),
        ];
        let (top, top_dollars) =
            parts
                .iter()
                .copied()
                .fold(("", 0.0), |best, p| if p.1 > best.1 { p } else { best });
        let _ = writeln!(
            md,
            "- **Cost, {}**: ${:.2} per million account-syncs; {top} is the largest part (${top_dollars:.2}).",
            s.name, d.total
        );
    }
    let Some(quiet) = r.scenarios.first() else {
        return;
    };
    let puts = quiet
        .per_sync
        .requests
        .get("DynamoDB.PutItem")
        .copied()
        .unwrap_or(0.0);
    let item = quiet.per_sync.largest_item_bytes;
    let units_per_write = (item as f64 / 1024.0).ceil().max(1.0);
    let account_units = puts * units_per_write;
    let _ = writeln!(
        md,
        "- **Account writes** (changed): a sync with no changes writes the account {} \
         (the last page's cursor together with the outcome), and a write of the {item}-byte \
         item costs {units_per_write:.0} WRU in the table and nothing in the `by-provider` index, \
         which now projects only the keys and `status`, so an update that leaves them alone writes \
         nothing there: {account_units:.0} WRU per sync. The earlier run measured 8 (two writes, \
         each charged again for an index that projected every attribute). With real Microsoft \
         tokens (1.5 to 2.5 KB access tokens, items of about 5 KB) each write costs about five \
         units, so the saving grows with them. The price: `GET /users` reads the ids from the \
         index and the accounts with `BatchGetItem` (a rare management call).",
        if puts.round() == 1.0 {
            "once".to_string()
        } else {
            format!("{puts:.0} times")
        }
    );
    if let Some(changed) = r
        .scenarios
        .iter()
        .find(|s| s.per_sync.feed_index_write_units > 0.0)
    {
        let c = &changed.per_sync;
        let _ = writeln!(
            md,
            "- **The change feed's price** ({}): {:.1} WRU per sync against {PRE_FEED_TEN_CHANGES_WRU:.0} \
             before the feed (the run of 2026-11-24), {:+.1} WRU ({:.2}x). Split: {:.1} for the file \
             items in the table, {:.1} in the `by-seq` index (each changed entry takes a new `seq`, \
             so DynamoDB deletes its old index entry and puts the new one: 2 WRU for an entry \
             under 1 KB), {:.1} for the account (the lease is taken before the entries are \
             numbered and given back with the last page's cursor and the outcome), {:.1} other \
             (see the push channel below). The floor for a feed in key order with in-place entries: a \
             projection of the keys only costs the same units for entries under 1 KB, and \
             numbering entries apart from them would need a read of each entry per page. A sync \
             that finds nothing new takes no lease and writes the account once, as before the feed.",
            changed.name,
            c.write_units,
            c.write_units - PRE_FEED_TEN_CHANGES_WRU,
            c.write_units / PRE_FEED_TEN_CHANGES_WRU,
            c.file_write_units,
            c.feed_index_write_units,
            c.account_write_units,
            other_write_units(c),
        );
    }
    if let Some(quiet) = r
        .scenarios
        .iter()
        .find(|s| s.per_sync.feed_index_write_units == 0.0 && other_write_units(&s.per_sync) > 0.0)
    {
        let c = &quiet.per_sync;
        let _ = writeln!(
            md,
            "- **A push channel that cannot open costs every sync** ({}: {:.1} WRU of other writes, \
             {:.0} `DeleteItem`s per sync). The benchmark's hub has push on (its `HUB_PUBLIC_URL` is \
             https), and the Graph stand-in, as Graph does, validates a new subscription by calling \
             its `notificationUrl`, which it cannot reach here: so every sync stores the channel's \
             two records, fails to open the subscription and removes them again, a provider call \
             and 4 WRU for nothing. A deployment whose subscriptions keep failing (a wrong public \
             URL, a route the provider cannot reach) pays that on every sync. Not changed in this \
             round: the change is to remember a failed open on the account and try again after a \
             back-off (hours), instead of at the next sync.",
            quiet.name,
            other_write_units(c),
            c.requests
                .get("DynamoDB.DeleteItem")
                .copied()
                .unwrap_or(0.0),
        );
    }
    if let Some(refresh) = r.scenarios.iter().find(|s| s.name.contains("refresh")) {
        let _ = writeln!(
            md,
            "- **KMS: one `Decrypt` per sync, one `GenerateDataKey` per refresh** (${:.2} per million \
             syncs when every sync refreshes, as hourly syncs with hour-long access tokens do). Data \
             keys are bound to each account by the KMS encryption context, so they cannot be cached \
             across accounts; keeping the account binding in the AES-GCM associated data only (it is \
             already there) and using one cached data key per worker for a few minutes would make KMS \
             nearly free, at the price of CloudTrail no longer naming the account whose tokens were \
             opened. Not made: binding each envelope to its account in KMS itself is a requirement \
             of the hub's design, worth more than these dollars. Syncing more often than the token \
             lifetime does not add refreshes.",
            refresh.dollars_per_million.kms
        );
    }
    if let Some(changed) = r.scenarios.iter().find(|s| s.name.contains("changed")) {
        let per_file = (changed.log_bytes_per_sync - quiet.log_bytes_per_sync) / 10.0;
        let _ = writeln!(
            md,
            "- **Logs grow with the changes**: about {per_file:.0} bytes per changed file (one info line \
             each), ${:.2} per million syncs with 10 changes; a first sync of 100,000 files logs about \
             {:.0} MB. Not changed: the contract asks the worker to log each file; a deployment \
             that does not want them can raise the worker's log level (`RUST_LOG`), and the log \
             groups' retention bounds what is kept.",
            changed.dollars_per_million.logs,
            per_file * 100_000.0 / 1e6
        );
    }
    let _ = writeln!(
        md,
        "- **Against docs/DEPLOY.md**: it estimated ${DEPLOY_NO_CHANGES} (no changes, one refresh) and \
         ${DEPLOY_TEN_CHANGES} (10 changes) before the changes above; the measured counts give {}. \
         The stand-in's short tokens make the items here smaller than in production, which works \
         the other way.",
        r.scenarios
            .iter()
            .map(|s| format!("${:.2} ({})", s.dollars_per_million.total, s.name))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

fn section_large_drive(md: &mut String, results: Option<&large_drive::Results>) {
    md.push_str("## 6. Large drive across invocations\n\n");
    let Some(r) = results else {
        return not_run(md, "large-drive");
    };
    let _ = writeln!(
        md,
        "The first sync of one OneDrive account whose drive holds {} files, on the testkit stand-in \
         answering every request after {:.0} ms, in delta pages of {}. The worker runs as Lambda \
         runs it (`hub-bench large-drive`): each invocation is a batch from the queue handed to \
         `hub::sync::handle_batch` with the function's timeout ({:.0} s) less the worker's reserve \
         ({:.0} s); a sync out of time stores its place, pauses its lease and is requeued by the hub \
         as a new message, until the first sync ends. On moto the benchmark plays the SQS event \
         source mapping (receive, run, delete what succeeded); locally, the Invoke API the local \
         queue calls. A *timeout* is an invocation that ran past the function's timeout; *receives* \
         counts every delivery of every message. The moto run goes first; a first sync not ended \
         within the benchmark's {:.0} s is reported as not completed. Load average before/after: \
         {} / {}.\n",
        r.files, r.latency_ms, r.page_size, r.timeout_seconds, r.reserve_seconds, r.budget_seconds, r.loadavg_before, r.loadavg_after
    );
    md.push_str(
        "| backend | completed | files indexed | pages | invocations | longest invocation (s) / timeout | timeouts | failures | receives | highest receive count | wall time (s) |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for run in &r.runs {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {:.1} / {:.0} | {} | {} | {} | {} | {:.1} |",
            run.backend,
            if run.completed { "yes" } else { "**no**" },
            run.files_indexed
                .map_or("not counted¹".to_string(), |n| n.to_string()),
            run.pages,
            run.invocations,
            run.longest_invocation_seconds,
            r.timeout_seconds,
            run.timeouts,
            run.failures,
            run.receives,
            run.max_receive_count,
            run.wall_seconds,
        );
    }
    if r.runs.iter().any(|run| run.files_indexed.is_none()) {
        md.push_str(
            "\n¹ Not counted on moto: reading 300,000 entries back costs moto about 4 s per 1 MB \
             page (its `Query` sorts the whole partition and its `Scan` walks the whole table, for \
             every page), which DynamoDB would not spend. *Completed* is the sync's own `ok` \
             outcome, which the worker sets only once its enumeration has reached the end; the \
             local run, which counts, checks the same code path.\n",
        );
    }
    if r.files < 300_000 || r.timeout_seconds < 120.0 {
        md.push_str(
            "\nThis run is **scaled down** from the issue's 300,000 files and 120 s function \
             (see `BENCH_LARGE_DRIVE`, `--timeout-secs`).\n",
        );
    }
    md.push('\n');
}

fn section_push(md: &mut String, results: Option<&push_latency::Results>) {
    md.push_str("## 7. Push latency\n\n");
    let Some(r) = results else {
        return not_run(md, "push");
    };
    let _ = writeln!(
        md,
        "One account per provider, its first sync done (which opens the Drive channel and the \
         Graph subscription) and the Dropbox webhook registered. Each of {} runs per provider adds \
         a file at the testkit stand-in (on loopback, answering the hub after {:.0} ms) and has the stand-in send \
         its notification to the `provider-webhooks` routes served in process \
         (`hub::web::notification_response`), which queue a push job; the worker consumes it \
         (`hub::sync::handle_batch`) until the file is in the index. The latency runs from \
         sending the notification to the file found in the index. **Not included**: the SQS \
         event source mapping's batching window (the worker's `MaximumBatchingWindowInSeconds: 5` \
         in template.yaml: up to 5 s more when the queue is quiet) and the Lambda invoke (a cold \
         start when no worker is warm; see section 1); on moto the consumer long-polls `ReceiveMessage` \
         in a loop, locally the local queue calls the worker at once. Load average \
         before/after: {} / {}.\n",
        r.runs, r.latency_ms, r.loadavg_before, r.loadavg_after
    );
    md.push_str(
        "| backend | provider | runs | notification to index, median (ms) | max (ms) | webhook answer, median (ms) |\n\
         |---|---|---|---|---|---|\n",
    );
    for case in &r.cases {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.0} | {:.0} | {:.1} |",
            case.backend,
            case.provider,
            case.latency_ms.count,
            case.latency_ms.median,
            case.latency_ms.max,
            case.webhook_answer_ms.median,
        );
    }
    md.push('\n');
}

fn section_delivery(md: &mut String, results: Option<&delivery::Results>) {
    md.push_str("## 8. Event delivery to the app\n\n");
    let Some(r) = results else {
        return not_run(md, "delivery");
    };
    let _ = writeln!(
        md,
        "{} events (`account.deleted`) queued on moto's SQS as the hub's producers queue them \
         (`hub::events::emit`), then delivered by `app-webhooks`' handling \
         (`hub::delivery::handle_batch`) from {} consumers at once (the template's \
         `MaximumConcurrency`), batches of up to ten, to the testkit webhook receiver, which \
         checks each Standard Webhooks signature. Requests counted by the proxy in front of moto; \
         Lambda duration is each batch's measured time, rounded up to the millisecond, at {:.0} MB \
         (arm64). The receiver is on loopback and answers at once: a real app's answer time adds \
         to every invocation's duration. *Duplicates* are events the receiver got more than once \
         (SQS delivers at least once; the app dedupes by `webhook-id`); the figures per event count \
         each distinct event once. Load average before/after: {} / {}.\n",
        r.events, r.consumers, r.memory_mb, r.loadavg_before, r.loadavg_after
    );
    md.push_str(
        "| events | delivered, signature valid | invalid | duplicates | failed | invocations | time in `handle_batch` (s) | delivery time (s) | events/s | queueing time (s) |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    let _ = writeln!(
        md,
        "| {} | {} | {} | {} | {} | {} | {:.2} | {:.2} | {:.0} | {:.2} |\n",
        r.events,
        r.verified,
        r.unverified,
        r.duplicates,
        r.failed,
        r.invocations,
        r.invocation_seconds,
        r.seconds,
        r.events_per_second,
        r.publish_seconds,
    );
    if r.invocation_seconds > 0.0 {
        // Two consumers: their invocation time adds up to twice the wall time at most.
        let delivering = if r.invocation_seconds < r.seconds / 2.0 {
            "The delivery time is mostly moto's SQS (receive and delete, in Python): delivering itself"
        } else {
            "Delivering itself"
        };
        let _ = writeln!(
            md,
            "{delivering} (`handle_batch`) took {:.2} s in all, {:.0} events per second of \
             invocation time.\n",
            r.invocation_seconds,
            r.verified as f64 / r.invocation_seconds
        );
    }
    md.push_str("Per delivered event:\n\n| requests | per event |\n|---|---|\n");
    for (operation, n) in &r.per_event.requests {
        let _ = writeln!(md, "| {operation} | {n:.3} |");
    }
    let _ = writeln!(
        md,
        "| DynamoDB units (write / read) | {:.3} / {:.3} |\n| Lambda GB-s | {:.6} |\n",
        r.per_event.write_units, r.per_event.read_units, r.gb_seconds_per_event
    );
    let d = &r.dollars_per_million;
    let _ = writeln!(
        md,
        "Dollars per million delivered events: SQS ${:.3}, DynamoDB ${:.3}, Lambda requests ${:.3}, \
         Lambda duration ${:.3}; **total ${:.2}**. The `ReceiveMessage` calls include the empty \
         long polls at the end of the run; the event source mapping keeps polling an idle queue \
         too, a cost of the deployment rather than of an event.\n",
        d.sqs, d.dynamodb, d.lambda_requests, d.lambda_duration, d.total
    );
}
