//! Worker: first and incremental syncs, on moto and locally, against their targets.

use std::fmt::Write as _;

use super::not_run;
use crate::worker;

/// The target for a first sync on moto against the raw `BatchWriteItem` loop.
const WORKER_RAW_TARGET: f64 = 1.2;

/// The target for the local first sync: within this multiple of fetching its pages.
const LOCAL_FETCH_TARGET: f64 = 3.0;

pub(super) fn section_worker(md: &mut String, results: Option<&worker::Results>) {
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

pub(super) fn observe_worker(md: &mut String, r: &worker::Results) {
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
