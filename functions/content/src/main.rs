//! `content`: the hub's own content links (`GET|HEAD /content/{token}`, docs/API.md "File
//! content"), for the bytes no provider link can serve (Google Drive, Dropbox Paper exports).
//! In AWS a Lambda function URL in response-streaming mode, with no API key: the link's
//! token is the credential. Locally the same binary under `cargo lambda watch`.
//!
//! The provider's answer is passed on a chunk at a time as it arrives, never held: the
//! function's memory does not grow with the file.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use hub::deadline::Deadline;
use hub::deployment::CONTENT;
use hub::web::{served_response, want_of, with_fallbacks, PathParam};
use hub::Hub;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    hub::telemetry::init();
    match start().await {
        Ok(hub) => serve_invocations(hub).await,
        Err(error) => hub::cold_start::serve_failure("content", error).await,
    }
}

async fn start() -> Result<Arc<Hub>, hub::HubError> {
    let hub = Arc::new(Hub::from_env().await?);
    CONTENT.check(&hub.config)?;
    Ok(hub)
}

/// How many times in a row the runtime's loop is entered again after it ended on an error.
const RUNTIME_RESTARTS: u32 = 3;

/// The runtime's loop, entered again when it ends on an error of its own. After a streamed
/// answer the runtime API may close the connection its client keeps alive, and the next
/// poll for an invocation then fails (`IncompleteMessage`; seen under `cargo lambda watch`),
/// which ends the loop and the process: Lambda would start a new instance, but `cargo lambda
/// watch` never does, and every later link would wait for ever. Bounded: a loop that ends
/// again within a minute counts towards [`RUNTIME_RESTARTS`].
async fn serve_invocations(hub: Arc<Hub>) -> Result<(), lambda_http::Error> {
    let mut restarts = 0;
    loop {
        let began = std::time::Instant::now();
        let Err(error) = lambda_http::run_with_streaming_response(app(hub.clone())).await else {
            return Ok(());
        };
        if began.elapsed() > Duration::from_secs(60) {
            restarts = 0;
        }
        if restarts == RUNTIME_RESTARTS {
            return Err(error);
        }
        restarts += 1;
        tracing::warn!(error = %error, restarts, "the runtime's loop ended; entering it again");
    }
}

fn app(hub: Arc<Hub>) -> Router {
    with_fallbacks(
        Router::new()
            // `get` answers `HEAD` too; the handler tells them apart.
            .route("/content/{token}", get(serve))
            .with_state(hub),
    )
}

async fn serve(
    State(hub): State<Arc<Hub>>,
    PathParam(token): PathParam,
    method: Method,
    headers: HeaderMap,
    invocation: Option<Extension<lambda_http::Context>>,
) -> Response {
    let deadline = deadline_of(invocation.map(|Extension(context)| context.deadline));
    let want = match want_of(&method, &headers) {
        Ok(want) => want,
        Err(error) => return error.into_response(),
    };
    match hub::content::open(&hub, &token, want, deadline).await {
        Ok(served) => served_response(served),
        Err(error) => error.into_response(),
    }
}

/// The invocation's deadline less the function's reserve (without one, outside Lambda, the
/// function's timeout from now): no provider call starts after it, and the stream of bytes
/// ends there, before Lambda would cut it.
fn deadline_of(deadline_epoch_ms: Option<u64>) -> Deadline {
    let end = match deadline_epoch_ms {
        Some(ms) => Deadline::of_lambda(UNIX_EPOCH + Duration::from_millis(ms), CONTENT.timeout),
        None => Deadline::after(CONTENT.timeout),
    };
    end.less(CONTENT.reserve)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::to_bytes;
    use axum::http::StatusCode;
    use lambda_http::tower::ServiceExt;

    /// The sample event (a function URL's request) names a link that was never issued: the
    /// answer is the API's 404, with nothing about links that exist.
    #[tokio::test]
    async fn an_unknown_link_is_404_in_the_apis_shape() {
        let dir = tempfile::tempdir().unwrap();
        let hub = Arc::new(hub::testing::local_hub(dir.path(), &[]).await);
        for method in ["GET", "HEAD", "DELETE"] {
            let event = include_str!("../../../events/content-link.json")
                .replace("\"method\": \"GET\"", &format!("\"method\": \"{method}\""));
            let request = lambda_http::request::from_str(&event).expect("sample event parses");
            let response = app(hub.clone()).oneshot(request).await.unwrap();
            let status = response.status();
            let body = to_bytes(response.into_body(), 1 << 16).await.unwrap();
            match method {
                "DELETE" => assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED),
                _ => assert_eq!(status, StatusCode::NOT_FOUND, "{method}"),
            }
            if method == "GET" {
                let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(body["error"], "not_found");
            }
        }
    }
}
