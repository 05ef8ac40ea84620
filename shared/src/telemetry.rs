//! Structured JSON logs through tracing, one line per event, as CloudWatch reads them best.

use tracing_subscriber::EnvFilter;

/// The level comes from `RUST_LOG`, else `AWS_LAMBDA_LOG_LEVEL` (set by Lambda's advanced
/// logging controls), else `info`.
pub fn init() {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .or_else(|| {
            std::env::var("AWS_LAMBDA_LOG_LEVEL")
                .ok()
                .map(|l| l.to_lowercase())
        })
        .and_then(|directives| EnvFilter::try_new(directives).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_target(false)
        .with_current_span(false)
        .flatten_event(true)
        .try_init();
}
