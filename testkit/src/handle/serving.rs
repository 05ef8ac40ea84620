//! [`Handle`]'s controls of how the stand-ins answer: page sizes, injected faults, held
//! requests and latency.

use std::time::Duration;

use super::Handle;
use crate::state::{Delay, Fault, Gate};

impl Handle {
    /// Items per Graph delta page (default 200).
    pub fn set_graph_page_size(&self, size: usize) {
        self.with(|s| s.graph_page_size = size.max(1))
    }

    /// The most entries a Dropbox `list_folder` page holds (default 500); a smaller `limit`
    /// in the request wins, as `limit` is only a hint to Dropbox.
    pub fn set_dropbox_page_size(&self, size: usize) {
        self.with(|s| s.dropbox_page_size = size.max(1))
    }

    /// The most entries a Box folder listing page and a Box events page hold, whatever
    /// `limit` asks (default: Box's limits, 1000 and 500): Box may answer fewer than asked
    /// (<https://developer.box.com/guides/api-calls/pagination/marker-based/>).
    pub fn set_box_page_sizes(&self, items: usize, events: usize) {
        self.with(|s| s.box_page_sizes = Some((items.max(1), events.max(1))))
    }

    /// The most a Drive page holds whatever `pageSize` asks (default 1000, Drive's limit);
    /// lower it to make a client page through a small drive.
    pub fn set_drive_max_page_size(&self, size: usize) {
        self.with(|s| s.drive_max_page_size = size.max(1))
    }

    /// The next `count` requests whose path starts with `path_prefix` answer `status` with the
    /// provider's JSON error body, and `Retry-After: retry_after` when given (seconds or an
    /// HTTP-date).
    pub fn fail_next(
        &self,
        path_prefix: &str,
        status: u16,
        retry_after: Option<&str>,
        count: usize,
    ) {
        let fault = Fault {
            path_prefix: path_prefix.to_string(),
            status,
            retry_after: retry_after.map(str::to_string),
            remaining: count,
            reason: None,
        };
        self.with(|s| s.faults.push(fault))
    }

    /// The next `count` Drive API requests answer `status` with Drive's error body whose
    /// `errors[0].reason` is `reason`, e.g. 403 `userRateLimitExceeded` or `rateLimitExceeded`
    /// (domain `usageLimits`), or 403 `insufficientFilePermissions` (domain `global`), as
    /// <https://developers.google.com/drive/api/guides/handle-errors> shows them.
    pub fn fail_next_drive(&self, status: u16, reason: &str, count: usize) {
        let fault = Fault {
            path_prefix: "/google/drive".to_string(),
            status,
            retry_after: None,
            remaining: count,
            reason: Some(reason.to_string()),
        };
        self.with(|s| s.faults.push(fault))
    }

    /// The next `count` Dropbox API requests whose path starts with `path_prefix` (e.g.
    /// `/dropbox/2/files/list_folder`) answer 409 with the endpoint error `error_summary`
    /// names, e.g. `path/not_found`: `{"error_summary": "path/not_found/...", "error":
    /// {".tag": "path", "path": {".tag": "not_found"}}}`.
    pub fn fail_next_dropbox(&self, path_prefix: &str, error_summary: &str, count: usize) {
        let fault = Fault {
            path_prefix: path_prefix.to_string(),
            status: 409,
            retry_after: None,
            remaining: count,
            reason: Some(error_summary.to_string()),
        };
        self.with(|s| s.faults.push(fault))
    }

    /// The next `count` requests of `method` (e.g. `POST`) whose path starts with
    /// `path_prefix` (e.g. `/graph/v1.0/subscriptions`) are held for `delay` before they are
    /// handled: the window in which a test races them with something else. They are counted
    /// in [`Handle::requests`] on arrival, before the wait.
    pub fn delay_next(&self, method: &str, path_prefix: &str, delay: Duration, count: usize) {
        let held = Delay {
            method: method.to_ascii_uppercase(),
            path_prefix: path_prefix.to_string(),
            delay,
            remaining: count,
        };
        self.with(|s| s.delays.push(held))
    }

    /// The next `count` requests of `method` whose path starts with `path_prefix` are each
    /// held until all `count` have arrived (at most a minute), then handled in their order of
    /// arrival, `stagger` apart: requests that a test needs in flight together whatever the
    /// machine's load, whose consequences then follow one another.
    pub fn hold_together(&self, method: &str, path_prefix: &str, count: usize, stagger: Duration) {
        let gate = Gate {
            method: method.to_ascii_uppercase(),
            path_prefix: path_prefix.to_string(),
            count,
            arrived: 0,
            together: std::sync::Arc::new(tokio::sync::Barrier::new(count)),
            stagger,
        };
        self.with(|s| s.gates.push(gate))
    }

    /// Every answer from now on takes at least `latency`.
    pub fn set_latency(&self, latency: Duration) {
        self.with(|s| s.latency = latency)
    }
}
