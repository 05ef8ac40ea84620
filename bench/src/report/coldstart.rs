//! Cold start: each function's init time and memory, against the reference figures.

use std::fmt::Write as _;

use super::not_run;
use crate::coldstart::{self, REFERENCE_INIT_MS, REFERENCE_MEMORY_MB};

pub(super) fn section_coldstart(md: &mut String, results: Option<&coldstart::Results>) {
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

pub(super) fn observe_coldstart(md: &mut String, r: &coldstart::Results) {
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
