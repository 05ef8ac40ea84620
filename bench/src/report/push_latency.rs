//! Push: from a provider's notification to the synced change.

use std::fmt::Write as _;

use super::not_run;
use crate::push_latency;

pub(super) fn section_push(md: &mut String, results: Option<&push_latency::Results>) {
    md.push_str("## 7. Push latency\n\n");
    let Some(r) = results else {
        return not_run(md, "push");
    };
    let _ = writeln!(
        md,
        "One account per provider, its first sync done (which opens the Drive channel and the \
         Graph subscription) and the Dropbox webhook registered. Each of {} runs per provider adds \
         a file at the testkit stand-in (on loopback, answering the hub after {:.0} ms) and has the stand-in send \
         its notification at once to the `provider-webhooks` routes served in process \
         (`hub::web::notification_response`), which queue a push job. On moto the queues are \
         consumed as template.yaml's event source mappings do, batching windows included \
         (`MaximumBatchingWindowInSeconds`: push queue 0, sync queue 5, events queue 1; push jobs \
         {}): the worker (`hub::sync::handle_batch`) syncs, its `sync.completed` goes through the \
         events queue to `app-webhooks` (`hub::delivery::handle_batch`) and on to the testkit \
         webhook receiver, which checks its signature as an app would. Locally the local queue \
         calls the worker at once and the latency stops at the index. The latencies run from the \
         change at the stand-in to the file in the index and to the app's `sync.completed`. \
         **Not included**: the Lambda invoke (a cold start when no worker is warm; see section \
         1). Load average before/after: {} / {}.\n",
        r.runs,
        r.latency_ms,
        if r.push_queue {
            "on their own queue, as the template deploys them"
        } else {
            "on the sync queue, as before the push queue"
        },
        r.loadavg_before,
        r.loadavg_after
    );
    md.push_str(
        "| backend | provider | runs | change to index, median (ms) | max (ms) | change to `sync.completed` at the app, median (ms) | max (ms) | webhook answer, median (ms) |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for case in &r.cases {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.0} | {:.0} | {} | {} | {:.1} |",
            case.backend,
            case.provider,
            case.latency_ms.count,
            case.latency_ms.median,
            case.latency_ms.max,
            case.completed_ms
                .as_ref()
                .map_or("-".into(), |s| format!("{:.0}", s.median)),
            case.completed_ms
                .as_ref()
                .map_or("-".into(), |s| format!("{:.0}", s.max)),
            case.webhook_answer_ms.median,
        );
    }
    md.push('\n');
}

pub(super) fn observe_push(md: &mut String, r: &push_latency::Results) {
    let slowest = r
        .cases
        .iter()
        .filter_map(|case| case.completed_ms.as_ref().map(|s| (case, s)))
        .max_by(|a, b| a.1.median.total_cmp(&b.1.median));
    if let Some((case, completed)) = slowest {
        let _ = writeln!(
            md,
            "- **Push, end to end, is the queues' windows**: the slowest median from the change at \
             the stand-in to the app's `sync.completed` is {:.0} ms ({}, {}; target under 2 s). Push \
             jobs now go on a queue of their own (`PushQueue`, `PUSH_QUEUE_URL`) that the worker \
             takes without a batching window; on the sync queue they waited for its 5 s window to \
             fill a batch (`--push-queue off` measures that layout). What remains is mostly the \
             events queue's 1 s window before `app-webhooks` delivers.",
            completed.median, case.provider, case.backend
        );
    }
}
