//! The query of the provider's redirect to `/auth/{provider}/callback`, as the domain's
//! [`Callback`].

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::QueryParams;
use crate::error::HubError;
use crate::login::Callback;

/// `code`, `state` and `error` of the callback's query (RFC 6749 §4.1.2 and §4.1.2.1); an
/// empty value counts as absent.
pub struct CallbackParams(pub Callback);

impl<S: Send + Sync> FromRequestParts<S> for CallbackParams {
    type Rejection = HubError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let mut query = QueryParams::from_request_parts(parts, state).await?;
        Ok(CallbackParams(Callback {
            code: query.take("code"),
            state: query.take("state"),
            error: query.take("error"),
        }))
    }
}
