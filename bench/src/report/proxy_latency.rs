//! The proxy: what going through the hub adds to a provider call.

use std::fmt::Write as _;

use super::not_run;
use crate::proxy_latency::{self, Latencies};

pub(super) fn section_proxy(md: &mut String, results: Option<&proxy_latency::Results>) {
    md.push_str("## 11. Proxy latency\n\n");
    let Some(r) = results else {
        return not_run(md, "proxy-latency");
    };
    let _ = writeln!(
        md,
        "`GET /users/{{id}}/proxy/drive/v3/files/{{id}}?fields=id,name,size` on the release \
         `users` binary under `cargo lambda watch --release` (the HTTP request made a Lambda \
         event, handed to the function through the emulator's Runtime API, the answer made \
         HTTP again), against the same request sent straight to the Google stand-in with the \
         account's token, by the same client on loopback, the local backend. Single requests: \
         one direct, one through the hub, one of `hub::proxy::forward` in process (the hub's \
         own work, without the emulator), in turn. Concurrent: rounds of {} requests at once \
         to the stand-in, then the same through the hub. The emulator serves each instance \
         one invocation at a time (as a Lambda instance) and starts at most `--concurrency` \
         instances of a function (1 by default, which queues concurrent requests behind each \
         other); it ran with {} here, warmed by three concurrent rounds, as Lambda starts an \
         instance per request in flight. Added latency: the hub's percentile less the direct \
         call's. Target: median under {:.0} ms, p99 under {:.0} ms. Load average before/after: \
         {} / {}.\n",
        r.concurrent.concurrency,
        r.instances,
        r.median_target_ms,
        r.p99_target_ms,
        r.loadavg_before,
        r.loadavg_after
    );
    md.push_str(
        "| requests in flight | path | requests | median (ms) | p99 (ms) | max (ms) |\n\
         |---|---|---|---|---|---|\n",
    );
    for l in [&r.single, &r.concurrent] {
        let mut rows = vec![
            ("direct to the stand-in", &l.direct),
            ("through the hub", &l.hub),
        ];
        if let Some(in_process) = &l.in_process {
            rows.push(("`hub::proxy::forward` in process", in_process));
        }
        for (path, p) in rows {
            let _ = writeln!(
                md,
                "| {} | {path} | {} | {:.2} | {:.2} | {:.2} |",
                l.concurrency, p.count, p.median_ms, p.p99_ms, p.max_ms
            );
        }
    }
    md.push('\n');
    for l in [&r.single, &r.concurrent] {
        let _ = writeln!(md, "- {}", verdict(l, r.median_target_ms, r.p99_target_ms));
    }
    md.push('\n');
}

/// The added latency at `l`'s concurrency against the targets, in one sentence.
pub(super) fn verdict(l: &Latencies, median_target: f64, p99_target: f64) -> String {
    let (median, p99) = l.added();
    let met = |value: f64, target: f64| if value < target { "met" } else { "NOT met" };
    let failed = match l.failed {
        0 => String::new(),
        n => format!(" ({n} requests failed)"),
    };
    format!(
        "{} in flight: added {median:.2} ms at the median (target under {median_target:.0} ms: \
         {}), {p99:.2} ms at p99 (target under {p99_target:.0} ms: {}){failed}.",
        l.concurrency,
        met(median, median_target),
        met(p99, p99_target)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy_latency::Percentiles;

    #[test]
    fn a_target_is_met_only_below_it() {
        let l = Latencies {
            concurrency: 50,
            direct: Percentiles::of(&[1.0]),
            hub: Percentiles::of(&[6.0]),
            in_process: None,
            failed: 2,
        };
        let text = verdict(&l, 5.0, 20.0);
        assert!(text.contains("added 5.00 ms at the median (target under 5 ms: NOT met)"));
        assert!(text.contains("5.00 ms at p99 (target under 20 ms: met)"));
        assert!(text.contains("(2 requests failed)"));
    }
}
