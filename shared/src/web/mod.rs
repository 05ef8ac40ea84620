//! The HTTP side shared by the API functions (feature `web`): the error shape (docs/API.md,
//! "Errors"), the bearer API key, and extractors that turn requests into the domain's typed
//! arguments, answering bad input with a clear 4xx instead of a rejection with a text body.
//!
//! The domain modules (`login`, `accounts`, `fanout`, `sync`) know nothing of HTTP; this
//! layer is the only one that depends on axum, so `sync-worker` builds without it.

mod api_key;
mod callback;
mod changes;
mod connect;
mod content;
mod error;
mod extract;
mod files;
mod login;
mod proxy;
mod push;
mod search;
mod users;

use axum::http::Uri;
use axum::Router;

use crate::error::HubError;

pub use api_key::{require_api_key, ApiKey};
pub use callback::{callback_response, CallbackAudience};
pub use changes::ChangesQuery;
pub use connect::{connect_page, create_session_response, display_name, SessionRequest, PAGE_CSP};
pub use content::{
    content_disposition, redirect_response, served_response, want_of, ContentQuery, FilePath,
};
pub use error::status_code;
pub use extract::{JsonBody, PathParam, QueryParams};
pub use files::{FilesQuery, FILES_PARAMETERS};
pub use login::{clear_login_cookie, login_cookie_name, login_response, CallbackParams};
pub use proxy::{answer_response, proxy_methods, Proxied, PROXY_ROUTE};
pub use push::{notification_response, verification_response, webhook_routes};
pub use search::SearchQuery;
pub use users::{users_page_response, UsersQuery};

/// Answers unknown paths and methods in the API's error shape.
pub fn with_fallbacks(router: Router) -> Router {
    router
        .fallback(|uri: Uri| async move { HubError::NotFound(uri.path().to_string()) })
        .method_not_allowed_fallback(|| async { HubError::MethodNotAllowed })
}
