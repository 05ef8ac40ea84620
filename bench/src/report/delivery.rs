//! Events to the app: delivery of a batch, and its retries.

use std::fmt::Write as _;

use super::not_run;
use crate::delivery;

pub(super) fn section_delivery(md: &mut String, results: Option<&delivery::Results>) {
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

pub(super) fn observe_delivery(md: &mut String, r: &delivery::Results) {
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
