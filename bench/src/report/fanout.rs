//! Fan-out: `POST /sync` and the scheduled fan-out over many accounts, within the API's limit.

use std::fmt::Write as _;

use super::not_run;
use crate::fanout;

/// API Gateway's HTTP API gives up on an integration after this long.
const API_GATEWAY_LIMIT_SECONDS: f64 = 29.0;

pub(super) fn section_fanout(md: &mut String, results: Option<&fanout::Results>) {
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

pub(super) fn observe_fanout(md: &mut String, r: &fanout::Results) {
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
         documented `SYNC_QUEUE_URL` (docs/API.md, \"Configuration\"); it matters from tens of \
         thousands of accounts on.\n",
    );
}
