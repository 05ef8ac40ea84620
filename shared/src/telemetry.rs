//! Structured JSON logs through tracing, one line per event, as CloudWatch reads them best.

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// Libraries that log what crosses the wire below `info`: at `trace` `lambda_runtime` logs
/// every raw event ("raw JSON event received from Lambda", with the `Authorization` header
/// and the callback's `code` and `state`), and the HTTP, TLS, OAuth and AWS SDK crates log
/// requests, headers or signing material at `debug`/`trace`. Whatever `RUST_LOG` asks,
/// these log at `info` at most.
pub const CAPPED_TARGETS: &[&str] = &[
    "lambda_runtime",
    "lambda_runtime_api_client",
    "lambda_http",
    "axum",
    "tower",
    "tower_http",
    "hyper",
    "hyper_util",
    "h2",
    "reqwest",
    "rustls",
    "oauth2",
    "aws_config",
    "aws_credential_types",
    "aws_runtime",
    "aws_sigv4",
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http",
    "aws_smithy_http_client",
    "aws_smithy_types",
    "aws_sdk_dynamodb",
    "aws_sdk_kms",
    "aws_sdk_sqs",
    "aws_sdk_sso",
    "aws_sdk_ssooidc",
    "aws_sdk_sts",
];

/// The most [`CAPPED_TARGETS`] may log.
const CAP: LevelFilter = LevelFilter::INFO;

/// The level comes from `RUST_LOG`, else `AWS_LAMBDA_LOG_LEVEL` (set by Lambda's advanced
/// logging controls), else `info`; [`CAPPED_TARGETS`] are capped at `info` on top of it.
pub fn init() {
    let directives = std::env::var("RUST_LOG").ok().or_else(|| {
        std::env::var("AWS_LAMBDA_LOG_LEVEL")
            .ok()
            .map(|l| l.to_lowercase())
    });
    let json = tracing_subscriber::fmt::layer()
        .json()
        .with_target(false)
        .with_current_span(false)
        .flatten_event(true);
    let _ = tracing_subscriber::registry()
        .with(user_filter(directives.as_deref()))
        .with(cap())
        .with(json)
        .try_init();
    // Tells whoever reads a trace-level log that the cap is on (the end-to-end leak search
    // checks for this line to know it ran at trace).
    tracing::trace!(capped_at = %CAP, "trace logging on; third-party targets capped");
}

/// What the user asked for; directives that do not parse fall back to `info`.
fn user_filter(directives: Option<&str>) -> EnvFilter {
    directives
        .and_then(|directives| EnvFilter::try_new(directives).ok())
        .unwrap_or_else(|| EnvFilter::new("info"))
}

/// A filter of its own, layered with the user's: an event is logged only when both let it
/// through, so no directive of the user's (`lambda_runtime=trace`, or a more specific
/// `lambda_runtime::layers=trace`) can lift the cap.
fn cap() -> Targets {
    Targets::new()
        .with_default(LevelFilter::TRACE)
        .with_targets(CAPPED_TARGETS.iter().map(|target| (*target, CAP)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn capped_targets_never_log_below_info() {
        let cap = cap();
        for target in [
            "lambda_runtime::layers::api_response",
            "lambda_http",
            "hyper_util::client::legacy",
            "aws_smithy_runtime::client::orchestrator",
            "aws_sigv4::http_request::sign",
        ] {
            assert!(!cap.would_enable(target, &Level::DEBUG), "{target}");
            assert!(!cap.would_enable(target, &Level::TRACE), "{target}");
            assert!(cap.would_enable(target, &Level::INFO), "{target}");
        }
        // The hub's own targets keep whatever level the user asks.
        assert!(cap.would_enable("hub::sync", &Level::TRACE));
        assert!(cap.would_enable("sync_worker", &Level::TRACE));
    }

    #[test]
    fn bad_directives_fall_back_to_info() {
        assert_eq!(
            user_filter(Some("=[bad")).max_level_hint(),
            Some(LevelFilter::INFO)
        );
        assert_eq!(user_filter(None).max_level_hint(), Some(LevelFilter::INFO));
        assert_eq!(
            user_filter(Some("lambda_runtime=trace")).max_level_hint(),
            Some(LevelFilter::TRACE)
        );
    }
}
