//! The query of `GET /users/{id}/changes`: `limit` and `cursor`, checked and decoded into the
//! typed arguments of [`crate::changes::feed`].

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::files::page_limit;
use super::QueryParams;
use crate::changes::{FeedCursor, DEFAULT_CHANGE_PAGE, MAX_CHANGE_PAGE};
use crate::error::HubError;

/// A feed request: `limit` is 1 to 1000 (100 when absent); `cursor` is a `next_cursor` of
/// this feed (absent or empty: from the start).
#[derive(Debug, PartialEq)]
pub struct ChangesQuery {
    pub limit: usize,
    pub cursor: Option<FeedCursor>,
}

impl ChangesQuery {
    /// A bad limit, or a cursor that does not decode, is `invalid_request`; whether the
    /// cursor belongs to the account is the feed's to check.
    pub fn parse(limit: Option<&str>, cursor: Option<&str>) -> Result<Self, HubError> {
        Ok(ChangesQuery {
            limit: page_limit(limit, DEFAULT_CHANGE_PAGE, MAX_CHANGE_PAGE)?,
            cursor: cursor
                .filter(|c| !c.is_empty())
                .map(FeedCursor::decode)
                .transpose()?,
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ChangesQuery {
    type Rejection = HubError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let query = QueryParams::from_request_parts(parts, state).await?;
        ChangesQuery::parse(query.get("limit"), query.get("cursor"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_defaults_to_100_and_must_be_1_to_1000() {
        assert_eq!(ChangesQuery::parse(None, None).unwrap().limit, 100);
        assert_eq!(ChangesQuery::parse(Some("1000"), None).unwrap().limit, 1000);
        for bad in ["0", "1001", "abc", "", "-5"] {
            let error = ChangesQuery::parse(Some(bad), None).unwrap_err();
            assert_eq!(error.code(), "invalid_request", "limit={bad}");
        }
    }

    #[test]
    fn an_empty_cursor_starts_at_the_beginning_and_a_forged_one_is_refused() {
        assert_eq!(ChangesQuery::parse(None, Some("")).unwrap().cursor, None);
        let issued = FeedCursor::encode("a1", None);
        assert!(ChangesQuery::parse(None, Some(&issued))
            .unwrap()
            .cursor
            .is_some());
        let files = crate::cursor::encode(
            Some("a1"),
            &crate::queries::FilesPosition::Legacy("f".into()),
        );
        for forged in ["Zm9yZ2Vk", &files] {
            let error = ChangesQuery::parse(None, Some(forged)).unwrap_err();
            assert_eq!(error.code(), "invalid_request", "{forged}");
        }
    }
}
