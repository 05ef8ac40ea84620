//! Property tests of everything that parses outside input: request bodies, query strings,
//! queue messages, provider cursors. Whatever arrives, the answer is a clear 4xx or a
//! reported failure, never a panic or a 5xx.

mod common;

use axum::body::Body;
use axum::extract::FromRequest;
use axum::http::Request;
use std::sync::Arc;

use common::JobRecorder;
use hub::fanout::SyncRequest;
use hub::model::{QueueMessage, TokenSet};
use hub::providers::http::RetryPolicy;
use hub::testing;
use hub::web::{JsonBody, QueryParams};
use hub::HubError;
use proptest::prelude::*;

/// The one account in the store of `any_queue_message_is_run_or_reported_failed`.
const KNOWN_ACCOUNT: &str = "known-account";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_sync_body_is_parsed_or_refused_as_invalid_json(body in prop_oneof![
        any::<Vec<u8>>(),
        "\\{\"source_type\": \"[a-z]{0,10}\"(, \"user_id\": \"[ -~]{0,20}\")?\\}".prop_map(String::into_bytes),
        "[ -~]{0,64}".prop_map(String::into_bytes),
    ]) {
        let request = Request::builder().method("POST").uri("/sync").body(Body::from(body)).unwrap();
        match runtime().block_on(JsonBody::<SyncRequest>::from_request(request, &())) {
            Ok(_) => {}
            Err(error) => {
                prop_assert!(matches!(error, HubError::InvalidJson(_)), "{error:?}");
                prop_assert_eq!(error.status(), 400);
            }
        }
    }

    /// Reading a query string has no error to report: whatever the parameters hold, each
    /// is read back decoded, the first occurrence of a repeated name winning (so a second
    /// `state=` appended to a callback cannot replace the first).
    #[test]
    fn any_query_string_yields_the_first_value_of_each_parameter(
        pairs in proptest::collection::vec((".{0,8}", ".{0,12}"), 0..6),
        raw_tail in "[ -~]{0,40}",
    ) {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.extend_pairs(&pairs);
        // Anything printable after the encoded pairs, made URI-safe the way a browser would:
        // it may add parameters of its own but cannot change those before it.
        let mut uri = url::Url::parse("http://hub.example/auth/google/callback").unwrap();
        uri.set_query(Some(&format!("{}&{raw_tail}", query.finish())));
        let request = Request::builder().uri(uri.as_str()).body(Body::empty());
        prop_assert!(request.is_ok(), "{uri} is a valid request target");
        let (mut parts, _) = request.unwrap().into_parts();
        let parsed = runtime()
            .block_on(<QueryParams as axum::extract::FromRequestParts<()>>::from_request_parts(&mut parts, &()))
            .unwrap();
        let mut first = std::collections::HashMap::new();
        for (name, value) in &pairs {
            first.entry(name.as_str()).or_insert(value.as_str());
        }
        for (name, value) in first {
            prop_assert_eq!(parsed.get(name), Some(value), "parameter {:?} of {}", name, uri);
        }
    }

    /// Every message ends one of two ways: it runs to completion, or its id is reported
    /// failed so SQS retries it and then moves it to the dead-letter queue. Against a store
    /// holding one Google account whose provider is unreachable: a body that is no message,
    /// and a job for that account, fail; a job for an unknown account or for the wrong
    /// provider is dropped, and a fan-out queues what it finds; those succeed.
    ///
    /// What each body is meant to be comes from the generator, not from parsing it with the
    /// types under test: a fan-out body that no longer parsed would otherwise be expected to
    /// fail, and the fan-out half would pass without ever running.
    #[test]
    fn any_queue_message_is_run_or_reported_failed(
        user in prop_oneof![Just(KNOWN_ACCOUNT.to_string()), "[a-z0-9-]{0,12}"],
        message in prop_oneof![
            "[ -~]{0,80}".prop_map(Meant::Text),
            ("(google|onedrive|x)", "(manual|schedule|other)")
                .prop_map(|(provider, reason)| Meant::Job { provider, reason }),
            ("(google|onedrive|zzz)", "[a-z0-9-]{1,36}", 0u32..5)
                .prop_map(|(provider, chain, step)| Meant::FanOut { provider, chain, step }),
        ],
    ) {
        let body = message.body(&user);
        let dir = tempfile::tempdir().unwrap();
        let rt = runtime();
        let env = hub::config::Env::from_map([
            ("HUB_DATA_DIR", dir.path().display().to_string()),
            ("GOOGLE_CLIENT_ID", "g".into()),
            ("GOOGLE_CLIENT_SECRET", "s".into()),
            // Nothing listens there: a job for the known account fails, it does not hang.
            ("GOOGLE_API_URL", "http://127.0.0.1:9".into()),
        ]);
        let no_retries = RetryPolicy { max_attempts: 1, ..RetryPolicy::default() };
        let mut hub = rt.block_on(hub::Hub::build(&env, no_retries)).unwrap();
        let queued = Arc::new(JobRecorder::default());
        hub.queue = queued.clone();
        rt.block_on(async {
            let tokens = TokenSet {
                access_token: "ya29.a".into(),
                refresh_token: Some("1//r".into()),
                expires_at: Some(chrono::Utc::now() + chrono::Duration::hours(1)),
            };
            let known = testing::account("google").id(KNOWN_ACCOUNT).sealed(&hub, &tokens).await;
            assert_eq!(hub.store.create_account(&known).await.unwrap(), hub::store::Write::Done);
        });
        let failed = rt.block_on(hub::sync::handle_batch(&hub, vec![hub::sync::Message { id: "m".into(), body: body.clone() }], hub::sync::fresh_invocation()));
        let should_fail = match &message {
            // Printable text is almost never a message; when it is one, it is one of the
            // others, so only text that is none is expected to fail.
            Meant::Text(_) => serde_json::from_str::<QueueMessage>(&body).is_err(),
            // A reason the API does not list makes the body no message at all.
            Meant::Job { provider, reason } => {
                !["manual", "schedule"].contains(&reason.as_str())
                    || (user == KNOWN_ACCOUNT && provider == "google")
            }
            Meant::FanOut { .. } => false,
        };
        let expected = if should_fail { vec!["m".to_string()] } else { vec![] };
        prop_assert_eq!(failed, expected, "{}", body);
        if let Meant::FanOut { provider, .. } = &message {
            // The one active account is Google's: a fan-out over Google queues its job,
            // one over another provider queues none.
            let jobs: Vec<(String, String)> = queued.0.lock().unwrap().iter().map(|queued| match queued {
                QueueMessage::Sync(job) => (job.account_id.clone(), job.provider.clone()),
                other => panic!("a fan-out that fits one invocation continues nothing: {other:?}"),
            }).collect();
            let wanted = if provider == "google" {
                vec![(KNOWN_ACCOUNT.to_string(), "google".to_string())]
            } else {
                vec![]
            };
            prop_assert_eq!(jobs, wanted, "{}", body);
        }
    }
}

/// A queue message as the generator meant it.
#[derive(Clone, Debug)]
enum Meant {
    /// Any printable text.
    Text(String),
    /// A sync job for the generated user.
    Job { provider: String, reason: String },
    /// The continuation of a fan-out over one provider.
    FanOut {
        provider: String,
        chain: String,
        step: u32,
    },
}

impl Meant {
    fn body(&self, user: &str) -> String {
        match self {
            Meant::Text(text) => text.clone(),
            Meant::Job { provider, reason } => serde_json::json!({
                "user_id": user,
                "provider": provider,
                "reason": reason,
                "requested_at": "2026-11-24T09:00:00Z",
            })
            .to_string(),
            Meant::FanOut {
                provider,
                chain,
                step,
            } => serde_json::json!({
                "continue_fanout": {
                    "providers": [provider],
                    "after": null,
                    "reason": "schedule",
                    "chain": chain,
                    "step": step,
                }
            })
            .to_string(),
        }
    }
}
