//! The query of `GET /users/{id}/files`: `limit` and `cursor`, checked and decoded into the
//! typed arguments of [`crate::accounts::files`].

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::QueryParams;
use crate::accounts::{FileCursor, DEFAULT_FILE_PAGE, MAX_FILE_PAGE};
use crate::cursor;
use crate::error::HubError;

/// A page request: `limit` is 1 to 1000 (100 when absent); `cursor` is the `next_cursor` of
/// the previous page (absent or empty: from the first file); whether it belongs to the
/// account is [`crate::accounts::files`]' to check.
#[derive(Debug, PartialEq)]
pub struct FilesQuery {
    pub limit: usize,
    pub after: Option<FileCursor>,
}

/// A `limit` parameter: `default` when absent, else a whole number from 1 to `max`.
pub(super) fn page_limit(raw: Option<&str>, default: usize, max: usize) -> Result<usize, HubError> {
    match raw {
        None => Ok(default),
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                HubError::InvalidRequest(format!("limit must be a whole number from 1 to {max}"))
            }),
    }
}

impl FilesQuery {
    /// Anything but a whole number in range, or a cursor that is not a `/files` cursor of
    /// this hub, is `invalid_request`.
    pub fn parse(limit: Option<&str>, cursor: Option<&str>) -> Result<Self, HubError> {
        Ok(FilesQuery {
            limit: page_limit(limit, DEFAULT_FILE_PAGE, MAX_FILE_PAGE)?,
            // An empty cursor started from the first file before cursors had a layout: it
            // still does.
            after: cursor
                .filter(|c| !c.is_empty())
                .map(cursor::decode)
                .transpose()?,
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for FilesQuery {
    type Rejection = HubError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let query = QueryParams::from_request_parts(parts, state).await?;
        FilesQuery::parse(query.get("limit"), query.get("cursor"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_defaults_to_100_and_must_be_1_to_1000() {
        assert_eq!(FilesQuery::parse(None, None).unwrap().limit, 100);
        assert_eq!(FilesQuery::parse(Some("1"), None).unwrap().limit, 1);
        assert_eq!(FilesQuery::parse(Some("1000"), None).unwrap().limit, 1000);
        for bad in ["0", "1001", "abc", "", "-5", "2.5"] {
            let error = FilesQuery::parse(Some(bad), None).unwrap_err();
            assert_eq!(error.code(), "invalid_request", "limit={bad}");
        }
    }

    #[test]
    fn cursor_is_the_files_cursor_of_the_id_to_start_after() {
        use crate::accounts::FileAfter;
        let issued = cursor::encode(Some("a1"), &FileAfter("file-42".into()));
        let after = FilesQuery::parse(None, Some(&issued))
            .unwrap()
            .after
            .unwrap();
        assert_eq!(after.of(Some("a1")).unwrap(), FileAfter("file-42".into()));
        assert_eq!(FilesQuery::parse(None, Some("")).unwrap().after, None);
        let feed = crate::changes::FeedCursor::encode("a1", None);
        for bad in ["not hex", &hex::encode("file-42"), &feed] {
            let error = FilesQuery::parse(None, Some(bad)).unwrap_err();
            assert_eq!(error.code(), "invalid_request", "{bad}");
        }
    }
}
