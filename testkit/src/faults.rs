//! The layer every request passes first: it is counted, held for the configured latency (and
//! any delay a test set for it), and answered with an injected fault in the provider's own
//! error shape when one matches its path, so the hub's error parsing is exercised too.

use axum::extract::{Request, State as Extract};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::state::{lock, Shared};
use crate::{box_com, dropbox, google, microsoft};

/// How many requests' headers are kept at least (see `State::request_headers`).
const KEPT_HEADERS: usize = 1000;

/// How long a request held at a gate waits for the others at most.
const GATE_BOUND: std::time::Duration = std::time::Duration::from_secs(60);

/// Counts every request, delays it by the configured latency, and answers it with an
/// injected fault when one matches its path.
pub(crate) async fn record_and_inject_faults(
    Extract(state): Extract<Shared>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_string();
    let method = request.method().as_str().to_string();
    let (fault, latency, gate) = {
        let mut state = lock(&state);
        state.requests.push(request.uri().to_string());
        // Only the latest ones: a load test sends far more than a test looks at.
        if state.request_headers.len() >= 2 * KEPT_HEADERS {
            state.request_headers.drain(..KEPT_HEADERS);
        }
        state
            .request_headers
            .push((request.uri().to_string(), request.headers().clone()));
        let held = state
            .delays
            .iter_mut()
            .find(|d| d.remaining > 0 && d.method == method && path.starts_with(&d.path_prefix))
            .map(|d| {
                d.remaining -= 1;
                d.delay
            })
            .unwrap_or_default();
        let fault = state
            .faults
            .iter_mut()
            .find(|f| f.remaining > 0 && path.starts_with(&f.path_prefix))
            .map(|f| {
                f.remaining -= 1;
                (f.status, f.retry_after.clone(), f.reason.clone())
            });
        let gate = state
            .gates
            .iter_mut()
            .find(|g| g.arrived < g.count && g.method == method && path.starts_with(&g.path_prefix))
            .map(|g| {
                let arrived_before = g.arrived;
                g.arrived += 1;
                (g.together.clone(), g.stagger * arrived_before as u32)
            });
        (fault, state.latency + held, gate)
    };
    if let Some((together, stagger)) = gate {
        // Bounded: a test whose other request never comes fails on its answer, not by hanging.
        let _ = tokio::time::timeout(GATE_BOUND, together.wait()).await;
        tokio::time::sleep(stagger).await;
    }
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let Some((status, retry_after, reason)) = fault else {
        return next.run(request).await;
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let message = status.canonical_reason().unwrap_or("Injected fault");
    // Each provider's own error shape, so the hub's error parsing is exercised too.
    let mut response = if path.starts_with("/dropbox") {
        match (status, reason) {
            (StatusCode::TOO_MANY_REQUESTS, _) => {
                let seconds = retry_after.as_deref().and_then(|v| v.parse().ok());
                dropbox::too_many_requests(seconds.unwrap_or(1))
            }
            (_, Some(summary)) => dropbox::api_error(status, &summary),
            // Dropbox's 5xx answers are plain text.
            (_, None) => (status, message.to_string()).into_response(),
        }
    } else if path.starts_with("/box") {
        match status {
            StatusCode::TOO_MANY_REQUESTS => box_com::too_many_requests(),
            _ => {
                let code = reason.unwrap_or_else(|| match status {
                    StatusCode::SERVICE_UNAVAILABLE => "unavailable".into(),
                    _ => "internal_server_error".into(),
                });
                box_com::box_error(status, &code, message)
            }
        }
    } else if path.starts_with("/google") {
        let error = google::GoogleError::new(status, message);
        match reason {
            Some(reason) => error.with_reason(&reason).into_response(),
            None => error.into_response(),
        }
    } else {
        let code = match status {
            StatusCode::TOO_MANY_REQUESTS => "activityLimitReached",
            StatusCode::SERVICE_UNAVAILABLE => "serviceNotAvailable",
            _ => "generalException",
        };
        microsoft::graph_error(status, code, message)
    };
    if let Some(value) = retry_after.and_then(|v| HeaderValue::from_str(&v).ok()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response.into_response()
}
