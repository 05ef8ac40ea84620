//! Property tests of everything that parses outside input: request bodies, query strings,
//! queue messages, provider cursors. Whatever arrives, the answer is a clear 4xx or a
//! reported failure, never a panic or a 5xx.

use axum::body::Body;
use axum::extract::FromRequest;
use axum::http::Request;
use hub::fanout::SyncRequest;
use hub::web::{JsonBody, QueryParams};
use hub::HubError;
use proptest::prelude::*;

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

    #[test]
    fn any_query_string_is_read_without_failing(query in "[ -~]{0,80}") {
        let uri = format!("/auth/google/callback?{}", query.replace(' ', "%20").replace('#', "%23"));
        if let Ok(request) = Request::builder().uri(uri).body(Body::empty()) {
            let (mut parts, _) = request.into_parts();
            let parsed = runtime().block_on(<QueryParams as axum::extract::FromRequestParts<()>>::from_request_parts(&mut parts, &()));
            prop_assert!(parsed.is_ok());
        }
    }

    #[test]
    fn any_queue_message_is_run_or_reported_failed(body in prop_oneof![
        "[ -~]{0,80}",
        "\\{\"user_id\": \"[a-z0-9-]{0,12}\", \"provider\": \"(google|onedrive|x)\", \"reason\": \"(manual|schedule|other)\", \"requested_at\": \"2026-11-24T09:00:00Z\"\\}",
        "\\{\"continue_fanout\": \\{\"providers\": \\[\"(google|zzz)\"\\], \"after\": null, \"reason\": \"schedule\"\\}\\}",
    ]) {
        let dir = tempfile::tempdir().unwrap();
        let rt = runtime();
        let env = hub::config::Env::from_map([
            ("HUB_DATA_DIR", dir.path().display().to_string()),
            ("GOOGLE_CLIENT_ID", "g".into()),
            ("GOOGLE_CLIENT_SECRET", "s".into()),
            // Nothing listens there: a job for a known account would fail, not hang.
            ("GOOGLE_API_URL", "http://127.0.0.1:9".into()),
        ]);
        let hub = rt.block_on(hub::Hub::build(&env, Default::default())).unwrap();
        let failed = rt.block_on(hub::worker::handle_batch(&hub, vec![hub::worker::Message { id: "m".into(), body: body.clone() }]));
        let parses = serde_json::from_str::<hub::model::QueueMessage>(&body).is_ok();
        if !parses {
            prop_assert_eq!(failed, vec!["m".to_string()]);
        }
    }
}
