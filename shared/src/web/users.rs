//! `GET /users` paged: the query (`limit`, `cursor`) as typed arguments of
//! [`crate::accounts::page_of`], and the answer with its RFC 8288 `Link` to the next page.

use axum::extract::FromRequestParts;
use axum::http::header::LINK;
use axum::http::request::Parts;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::files::page_limit;
use super::QueryParams;
use crate::accounts::{AccountPosition, AccountsPage, DEFAULT_ACCOUNT_PAGE, MAX_ACCOUNT_PAGE};
use crate::error::HubError;

/// A page request: `limit` is 1 to 1000 (1000 when absent); `cursor` is the one of the
/// previous page's `Link`, decoded back into the position to resume after.
#[derive(Debug, PartialEq)]
pub struct UsersQuery {
    /// `?owner=`: one owner's accounts only.
    pub owner: Option<String>,
    pub limit: usize,
    pub after: Option<AccountPosition>,
}

impl UsersQuery {
    /// A limit out of range, or a cursor this hub could not have issued, is `invalid_request`.
    pub fn parse(limit: Option<&str>, cursor: Option<&str>) -> Result<Self, HubError> {
        Ok(UsersQuery {
            owner: None,
            limit: page_limit(limit, DEFAULT_ACCOUNT_PAGE, MAX_ACCOUNT_PAGE)?,
            after: cursor.map(AccountPosition::from_cursor).transpose()?,
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for UsersQuery {
    type Rejection = HubError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let query = QueryParams::from_request_parts(parts, state).await?;
        let owner = match query.get("owner") {
            Some(owner) if crate::connect::valid_owner(owner) => Some(owner.to_string()),
            Some(_) => {
                return Err(HubError::InvalidRequest(
                    "owner must be 1 to 128 characters of A-Za-z0-9._:@-".into(),
                ))
            }
            None => None,
        };
        Ok(UsersQuery {
            owner,
            ..UsersQuery::parse(query.get("limit"), query.get("cursor"))?
        })
    }
}

/// The `Link` of the page after `next`, with the same `limit` and `owner` (RFC 8288 §3: a URI
/// reference in angle brackets, then `rel="next"`). The cursor is base64url and an owner's
/// characters are all allowed in a query, so neither needs escaping.
pub fn next_link(
    public_url: &str,
    owner: Option<&str>,
    limit: usize,
    next: &AccountPosition,
) -> String {
    let owner = owner
        .map(|owner| format!("owner={owner}&"))
        .unwrap_or_default();
    format!(
        "<{public_url}/users?{owner}limit={limit}&cursor={}>; rel=\"next\"",
        next.to_cursor()
    )
}

/// 200 with the page's rows as a plain list, and a `Link` to the next page while accounts
/// remain.
pub fn users_page_response(
    public_url: &str,
    owner: Option<&str>,
    limit: usize,
    page: AccountsPage,
) -> Response {
    let mut response = Json(page.accounts).into_response();
    if let Some(next) = &page.next {
        match HeaderValue::from_str(&next_link(public_url, owner, limit, next)) {
            Ok(link) => {
                response.headers_mut().insert(LINK, link);
            }
            // HUB_PUBLIC_URL is a checked URL and the cursor base64url, so this cannot happen; a
            // page without its link would silently truncate the list, so it is an error.
            Err(e) => return HubError::internal(format!("Link header: {e}")).into_response(),
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cursor::forge;

    #[test]
    fn limit_defaults_to_1000_and_must_be_1_to_1000() {
        assert_eq!(UsersQuery::parse(None, None).unwrap().limit, 1000);
        assert_eq!(UsersQuery::parse(Some("1"), None).unwrap().limit, 1);
        for bad in ["0", "1001", "abc", "", "-1"] {
            let error = UsersQuery::parse(Some(bad), None).unwrap_err();
            assert_eq!(error.code(), "invalid_request", "limit={bad}");
        }
    }

    #[test]
    fn cursor_round_trips_and_bad_ones_are_refused() {
        let position = AccountPosition {
            provider: crate::providers::onedrive::NAME,
            id: "0d1c4c2e-0000-4000-8000-000000000000".into(),
        };
        let parsed = UsersQuery::parse(None, Some(&position.to_cursor())).unwrap();
        assert_eq!(parsed.after, Some(position));
        let too_long = format!("google/{}", "x".repeat(200));
        let users = |position: &str| forge("v2", "users", None, position);
        for bad in [
            "not hex".to_string(),
            users("no-slash"),
            users("nosuchprovider/abc"),
            users("google/"),
            users(&too_long),
            "ff".to_string(),
            // The layout before v2, and a cursor of another route.
            hex::encode("google/abc"),
            forge("v2", "files", Some("a1"), "google/abc"),
        ] {
            let error = UsersQuery::parse(None, Some(&bad)).unwrap_err();
            assert_eq!(error.code(), "invalid_request", "cursor={bad}");
        }
    }

    #[test]
    fn link_points_at_the_next_page() {
        let next = AccountPosition {
            provider: crate::providers::google::NAME,
            id: "abc".into(),
        };
        assert_eq!(
            next_link("https://hub.example", None, 50, &next),
            format!(
                "<https://hub.example/users?limit=50&cursor={}>; rel=\"next\"",
                forge("v2", "users", None, "google/abc")
            )
        );
        assert_eq!(
            next_link("https://hub.example", Some("u-1"), 50, &next),
            format!(
                "<https://hub.example/users?owner=u-1&limit=50&cursor={}>; rel=\"next\"",
                forge("v2", "users", None, "google/abc")
            )
        );
    }
}
