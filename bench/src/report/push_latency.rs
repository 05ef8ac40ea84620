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

pub(super) fn observe_push(md: &mut String, r: &push_latency::Results) {
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
