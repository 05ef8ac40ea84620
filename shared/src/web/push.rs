//! The HTTP side of `provider-webhooks` (docs/API.md, "Push notifications"): each provider's
//! verification echo, and its notification handed to [`crate::push`] as plain values (headers
//! read here, the raw body untouched, so a signature covers exactly what was received).

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::error::HubError;
use crate::hub::Hub;
use crate::providers::Webhook;
use crate::push;
use crate::web::extract::read_capped;
use crate::web::{PathParam, QueryParams};

/// `GET|POST /webhooks/{provider}`: the routes of `provider-webhooks`, also served in process
/// by the push benchmark.
pub fn webhook_routes(hub: Arc<Hub>) -> Router {
    Router::new()
        .route("/webhooks/{provider}", get(verify).post(notify))
        .with_state(hub)
}

async fn verify(
    State(hub): State<Arc<Hub>>,
    PathParam(provider): PathParam,
    query: QueryParams,
) -> Response {
    verification_response(&hub, &provider, &query).await
}

async fn notify(
    State(hub): State<Arc<Hub>>,
    PathParam(provider): PathParam,
    query: QueryParams,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let body = match read_capped(&headers, body, push::MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(error) => return error.into_response(),
    };
    notification_response(&hub, &provider, &query, &headers, &body).await
}

/// `GET /webhooks/{provider}`: the provider's verification request, read as its module's
/// [`Webhook`] says.
pub async fn verification_response(hub: &Hub, provider: &str, query: &QueryParams) -> Response {
    let connector = match hub.providers.get(provider) {
        Ok(connector) => connector,
        Err(error) => return error.into_response(),
    };
    match connector.name().spec().webhook {
        Webhook::AppSigned {
            challenge_param, ..
        } => match echoed(query, challenge_param) {
            Some(answer) => answer,
            None => required(challenge_param),
        },
        Webhook::Subscriptions { validation_param } => match echoed(query, validation_param) {
            Some(answer) => answer,
            None => required(validation_param),
        },
        Webhook::ChannelHeaders { .. } | Webhook::None => no_such_webhook(provider),
    }
}

/// `POST /webhooks/{provider}`: a notification, read as its module's [`Webhook`] says.
/// Answers at once; the sync runs in the worker.
pub async fn notification_response(
    hub: &Hub,
    provider: &str,
    query: &QueryParams,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    let connector = match hub.providers.get(provider) {
        Ok(connector) => connector,
        Err(error) => return error.into_response(),
    };
    let name = connector.name();
    match name.spec().webhook {
        Webhook::AppSigned {
            signature_header, ..
        } => {
            let signature = header_text(headers, signature_header);
            match push::app_notification(hub, name.as_str(), signature, body).await {
                Ok(_) => StatusCode::OK.into_response(),
                Err(error) => error.into_response(),
            }
        }
        Webhook::ChannelHeaders {
            id_header,
            token_header,
            state_header,
            handshake_state,
        } => {
            let handshake = header_text(headers, state_header) == Some(handshake_state);
            let queued = push::channel_notification(
                hub,
                name.as_str(),
                header_text(headers, id_header),
                header_text(headers, token_header),
                handshake,
            )
            .await;
            match queued {
                Ok(_) => StatusCode::OK.into_response(),
                Err(error) => error.into_response(),
            }
        }
        // A validation request is POSTed too, to be echoed within 10 s: nothing else is done
        // then.
        Webhook::Subscriptions { validation_param } => match echoed(query, validation_param) {
            Some(answer) => answer,
            None => match push::subscription_notification(hub, name.as_str(), body).await {
                Ok(_) => StatusCode::ACCEPTED.into_response(),
                Err(error) => error.into_response(),
            },
        },
        Webhook::None => no_such_webhook(provider),
    }
}

/// A verification without its token: 400.
fn required(param: &str) -> Response {
    HubError::InvalidRequest(format!("{param} is required")).into_response()
}

/// A verification request answered: the non-empty token in `param`, echoed.
fn echoed(query: &QueryParams, param: &str) -> Option<Response> {
    query.get(param).filter(|token| !token.is_empty()).map(echo)
}

/// The verification token, echoed as the provider asks: 200, plain text, and `nosniff` so that
/// no browser reads a crafted token as HTML.
fn echo(token: &str) -> Response {
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        token.to_string(),
    )
        .into_response()
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// A configured provider that sends no notifications to this route.
fn no_such_webhook(provider: &str) -> Response {
    HubError::NotFound(format!("/webhooks/{provider}")).into_response()
}
