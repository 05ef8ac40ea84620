//! What the code assumes of `template.yaml`: each function's timeout and the reserve it keeps
//! back from its deadline, the variables it needs at cold start, and the queues' visibility
//! timeouts, receive counts and the pace of the events queue's retries.
//!
//! The template is the deployment, so it is the source of truth; this module is the code's
//! one copy of it, and `shared/tests/template.rs` reads the template and compares every value
//! here with it, so neither can change alone. The rest of the code takes these numbers from
//! here (the modules' own constants, such as [`crate::sync::RESERVE`], are these).

use std::time::Duration;

/// A Lambda function as `template.yaml` deploys it.
#[derive(Debug)]
pub struct Function {
    /// The cargo binary, and the suffix of its `FunctionName` (`${AWS::StackName}-<name>`).
    pub name: &'static str,
    /// Its logical id in the template.
    pub resource: &'static str,
    /// Its `Timeout` (the function's own, or `Globals.Function.Timeout`).
    pub timeout: Duration,
    /// Kept back from the invocation's deadline to store what was done and answer: no new
    /// work starts after `timeout - reserve`.
    pub reserve: Duration,
    /// What it needs at cold start beyond the backend's resources (see [`Need`]).
    pub needs: &'static [Need],
}

/// A part of the configuration a function cannot start without.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// `HUB_API_KEY`: the function serves management routes (without it they would be open).
    ApiKey,
    /// `HUB_WEBHOOK_URL` and its secret: the function delivers events (and nothing else).
    Webhook,
}

impl Need {
    /// The variables of this need in an `aws` deployment.
    pub fn variables(self) -> &'static [&'static str] {
        match self {
            Need::ApiKey => &["HUB_API_KEY"],
            Need::Webhook => &EVENTS_ENV,
        }
    }
}

/// What `Config::from_env` requires when `HUB_BACKEND=aws`.
pub const AWS_ENV: [&str; 3] = ["TABLE_NAME", "KMS_KEY_ID", "SYNC_QUEUE_URL"];

/// Variables the code defaults for a local run but a deployment must set, with the value it
/// must have when there is only one: in Lambda the local backend would keep the hub's data in
/// a function's `/tmp`, and the localhost public URL would send every OAuth redirect URI and
/// connect link to the user's own machine.
pub const DEPLOYMENT_ENV: [(&str, Option<&str>); 2] =
    [("HUB_BACKEND", Some("aws")), ("HUB_PUBLIC_URL", None)];

/// Events to the app: optional for every function, but when `HUB_WEBHOOK_URL` is set the
/// others are required with it (`Config::from_env` refuses one without the other), so a
/// function given the URL must be given all three.
pub const EVENTS_ENV: [&str; 3] = ["HUB_WEBHOOK_URL", "HUB_WEBHOOK_SECRET", "EVENTS_QUEUE_URL"];

impl Function {
    /// Every variable this function requires in an `aws` deployment: the backend's, the
    /// deployment's, and those of its [`Need`]s.
    pub fn required_env(&self) -> Vec<&'static str> {
        let mut vars: Vec<&'static str> = AWS_ENV.to_vec();
        vars.extend(DEPLOYMENT_ENV.iter().map(|(name, _)| *name));
        for need in self.needs {
            for var in need.variables() {
                if !vars.contains(var) {
                    vars.push(var);
                }
            }
        }
        vars
    }
}

/// HTTP functions: `Globals.Function.Timeout`. The login callback and a deletion call
/// providers; [`crate::deadline::ANSWER_MARGIN`] is what they keep to answer.
pub const AUTH: Function = Function {
    name: "auth",
    resource: "AuthFunction",
    timeout: Duration::from_secs(15),
    reserve: Duration::from_secs(2),
    needs: &[],
};

pub const USERS: Function = Function {
    name: "users",
    resource: "UsersFunction",
    timeout: Duration::from_secs(15),
    reserve: Duration::from_secs(2),
    needs: &[Need::ApiKey],
};

/// The fan-out pages through every account and hands the rest to a continuation before its
/// deadline; behind `POST /sync` it must answer before API Gateway's [`API_TIMEOUT`]. The
/// reserve covers the chunk under way when the budget runs out (ten `SendMessageBatch` calls,
/// each retried for up to about 3 s) and the continuation.
pub const SYNC_FANOUT: Function = Function {
    name: "sync-fanout",
    resource: "SyncFanoutFunction",
    timeout: Duration::from_secs(29),
    reserve: Duration::from_secs(8),
    needs: &[Need::ApiKey],
};

/// The reserve is the longest store-and-requeue after the last provider call (a page of up
/// to a thousand entries in 40 `BatchWriteItem` calls, the cursor, the requeue, each with its
/// bounded retries). The local queue waits this long for an invocation, and a sync's lease
/// outlives it.
pub const SYNC_WORKER: Function = Function {
    name: "sync-worker",
    resource: "SyncWorkerFunction",
    timeout: Duration::from_secs(120),
    reserve: Duration::from_secs(10),
    needs: &[],
};

/// A batch's deliveries run side by side, each within its 10 s
/// ([`crate::delivery::ATTEMPT_TIMEOUT`]); the reserve changes visibilities and answers.
pub const APP_WEBHOOKS: Function = Function {
    name: "app-webhooks",
    resource: "AppWebhooksFunction",
    timeout: Duration::from_secs(20),
    reserve: Duration::from_secs(3),
    needs: &[Need::Webhook],
};

/// Graph and Dropbox give a notification's receiver 10 s; the route only checks and queues.
pub const PROVIDER_WEBHOOKS: Function = Function {
    name: "provider-webhooks",
    resource: "ProviderWebhooksFunction",
    timeout: Duration::from_secs(8),
    reserve: Duration::from_secs(2),
    needs: &[],
};

/// The content links' function (docs/API.md, "File content"), behind a Lambda function URL
/// that streams: a stream lasts as long as its bytes take, and one answer carries up to
/// 200 MB, which Lambda streams at about 2 MB/s past the first 6 MB (100 s). The reserve
/// ends the stream before Lambda cuts it.
pub const CONTENT: Function = Function {
    name: "content",
    resource: "ContentFunction",
    timeout: Duration::from_secs(300),
    reserve: Duration::from_secs(2),
    needs: &[],
};

/// Every function of the template, each once.
pub const FUNCTIONS: [&Function; 7] = [
    &AUTH,
    &USERS,
    &SYNC_FANOUT,
    &SYNC_WORKER,
    &APP_WEBHOOKS,
    &PROVIDER_WEBHOOKS,
    &CONTENT,
];

/// How long the HTTP API waits for a Lambda integration (API Gateway's fixed maximum for
/// HTTP APIs): a function behind a route that runs longer answers the caller nothing.
pub const API_TIMEOUT: Duration = Duration::from_secs(30);

/// An SQS queue with a Lambda consumer and a dead-letter queue, as the template deploys it.
#[derive(Debug)]
pub struct Queue {
    /// Its logical id in the template.
    pub resource: &'static str,
    /// The function its event source mapping invokes.
    pub consumer: &'static Function,
    /// Its `VisibilityTimeout`: at least six times the consumer's timeout plus the batching
    /// window, as Lambda recommends (a throttled or retried batch must not come back while it
    /// is still being worked on).
    pub visibility_timeout: Duration,
    /// The mapping's `MaximumBatchingWindowInSeconds`.
    pub batching_window: Duration,
    /// The redrive policy's `maxReceiveCount`: receives before the dead-letter queue.
    pub max_receive_count: u32,
    /// Its `MessageRetentionPeriod`: no message (so no redelivery) is older.
    pub message_retention: Duration,
}

/// Sync jobs; the local queue dead-letters after the same number of receives.
pub const SYNC_QUEUE: Queue = Queue {
    resource: "SyncQueue",
    consumer: &SYNC_WORKER,
    visibility_timeout: Duration::from_secs(900),
    batching_window: Duration::from_secs(5),
    max_receive_count: 5,
    message_retention: Duration::from_secs(4 * 86_400),
};

/// Events to the app: a failed delivery's visibility is set to its retry delay
/// ([`retry_delay`]), so this timeout only applies to an invocation that
/// died without answering; the sixth receive comes about 1 h 51 min after the first.
pub const EVENTS_QUEUE: Queue = Queue {
    resource: "EventsQueue",
    consumer: &APP_WEBHOOKS,
    visibility_timeout: Duration::from_secs(130),
    batching_window: Duration::from_secs(1),
    max_receive_count: 6,
    message_retention: Duration::from_secs(4 * 86_400),
};

/// Push jobs: the worker takes them without a batching window, so that a pushed change
/// waits for no batch to fill (under 2 s from the change to `sync.completed` on moto,
/// BENCHMARKS.md); otherwise as [`SYNC_QUEUE`], whose dead-letter queue it shares.
pub const PUSH_QUEUE: Queue = Queue {
    resource: "PushQueue",
    consumer: &SYNC_WORKER,
    visibility_timeout: Duration::from_secs(900),
    batching_window: Duration::ZERO,
    max_receive_count: 5,
    message_retention: Duration::from_secs(4 * 86_400),
};

pub const QUEUES: [&Queue; 3] = [&SYNC_QUEUE, &PUSH_QUEUE, &EVENTS_QUEUE];

/// The wait after the `attempt`-th failed delivery: 1, 5, 15, 30 and 60 minutes, so the first
/// retry comes within two minutes and the sixth and last attempt about 1 h 51 min after the
/// first (docs/API.md, "Events to the app"). `app-webhooks` sets it as a failed event's
/// visibility ([`crate::delivery`]); the local queue waits it ([`crate::queue::local`]). Over
/// [`EVENTS_QUEUE`]'s receives, it is the queue's real pace.
pub fn retry_delay(attempt: u32) -> Duration {
    const MINUTES: [u64; 5] = [1, 5, 15, 30, 60];
    let index = (attempt.max(1) as usize - 1).min(MINUTES.len() - 1);
    Duration::from_secs(MINUTES[index] * 60)
}

// What holds between these numbers, checked when the crate compiles.
const _: () = {
    let mut i = 0;
    while i < FUNCTIONS.len() {
        assert!(FUNCTIONS[i].reserve.as_secs() < FUNCTIONS[i].timeout.as_secs());
        i += 1;
    }
    let mut q = 0;
    while q < QUEUES.len() {
        let queue = QUEUES[q];
        assert!(
            queue.visibility_timeout.as_secs()
                >= 6 * queue.consumer.timeout.as_secs() + queue.batching_window.as_secs()
        );
        q += 1;
    }
    // Behind POST /sync, the fan-out answers before the HTTP API gives up.
    assert!(SYNC_FANOUT.timeout.as_secs() < API_TIMEOUT.as_secs());
};

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn every_function_is_listed_once() {
        let names: std::collections::BTreeSet<&str> = FUNCTIONS.iter().map(|f| f.name).collect();
        assert_eq!(names.len(), FUNCTIONS.len());
    }
}
