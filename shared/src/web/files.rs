//! The query of `GET /users/{id}/files` (docs/API.md, "Files"): `limit`, `cursor` and the
//! filters, checked and decoded into the typed arguments of [`crate::queries::files`].

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use chrono::{DateTime, Utc};

use super::QueryParams;
use crate::cursor;
use crate::error::HubError;
use crate::model::FileKind;
use crate::queries::{
    lower, path_prefix, Deleted, FileCursor, FileFilter, Parent, DEFAULT_FILE_PAGE, MAX_FILE_PAGE,
};
use crate::store::{MAX_KEY_LEN, MAX_PATH_KEY_LEN};

/// A page request: `limit` is 1 to 1000 (100 when absent); `cursor` is the `next_cursor` of
/// the previous page (absent or empty: from the first file); whether it belongs to the
/// account and to these filters is [`crate::queries::files`]' to check.
#[derive(Debug, PartialEq)]
pub struct FilesQuery {
    pub limit: usize,
    pub after: Option<FileCursor>,
    pub filter: FileFilter,
}

/// The parameters `/files` takes; any other is `invalid_request`.
pub const FILES_PARAMETERS: &[&str] = &[
    "limit",
    "cursor",
    "parent_id",
    "drive_id",
    "kind",
    "mime_type",
    "name_prefix",
    "path_prefix",
    "modified_after",
    "modified_before",
    "deleted",
];

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

fn bad(name: &str, what: &str) -> HubError {
    HubError::InvalidRequest(format!("{name} must be {what}"))
}

/// A text filter: 1 to `max` characters.
fn text(params: &QueryParams, name: &str, max: usize) -> Result<Option<String>, HubError> {
    match params.get(name) {
        None => Ok(None),
        Some(value) if !value.is_empty() && value.len() <= max => Ok(Some(value.to_string())),
        Some(_) => Err(bad(name, &format!("1 to {max} bytes of text"))),
    }
}

fn time(params: &QueryParams, name: &str) -> Result<Option<DateTime<Utc>>, HubError> {
    params
        .get(name)
        .map(|raw| {
            DateTime::parse_from_rfc3339(raw)
                .map(|at| at.with_timezone(&Utc))
                .map_err(|_| bad(name, "an RFC 3339 date and time, like 2026-01-31T12:00:00Z"))
        })
        .transpose()
}

impl FilesQuery {
    /// Reads the query string: a parameter it does not know, a value out of range, a
    /// cursor that is not a `/files` cursor of this hub: `invalid_request`.
    pub fn parse(params: &QueryParams) -> Result<Self, HubError> {
        if let Some(unknown) = params
            .0
            .keys()
            .find(|name| !FILES_PARAMETERS.contains(&name.as_str()))
        {
            return Err(HubError::InvalidRequest(format!(
                "unknown parameter {unknown:?}; /files takes {}",
                FILES_PARAMETERS.join(", ")
            )));
        }
        let parent = text(params, "parent_id", MAX_KEY_LEN)?.map(|id| match id.as_str() {
            "root" => Parent::Root,
            _ => Parent::Id(id),
        });
        let kind = match params.get("kind") {
            None => None,
            Some("file") => Some(FileKind::File),
            Some("folder") => Some(FileKind::Folder),
            Some("shortcut") => Some(FileKind::Shortcut),
            Some(_) => return Err(bad("kind", "file, folder or shortcut")),
        };
        let path = text(params, "path_prefix", MAX_PATH_KEY_LEN)?;
        if path.as_deref().is_some_and(|path| !path.starts_with('/')) {
            return Err(bad("path_prefix", "a path from the root, starting with /"));
        }
        let deleted = match params.get("deleted") {
            None | Some("false") => Deleted::Live,
            Some("true") => Deleted::Only,
            Some("any") => Deleted::Any,
            Some(_) => return Err(bad("deleted", "false, true or any")),
        };
        let filter = FileFilter {
            parent,
            drive_id: text(params, "drive_id", MAX_KEY_LEN)?,
            kind,
            mime_type: text(params, "mime_type", 255)?,
            name_prefix: text(params, "name_prefix", 255)?.map(|name| lower(&name)),
            path_prefix: path.map(|path| path_prefix(&path)),
            modified_after: time(params, "modified_after")?,
            modified_before: time(params, "modified_before")?,
            deleted,
        };
        Ok(FilesQuery {
            limit: page_limit(params.get("limit"), DEFAULT_FILE_PAGE, MAX_FILE_PAGE)?,
            // An empty cursor started from the first file before cursors had a layout: it
            // still does.
            after: params
                .get("cursor")
                .filter(|c| !c.is_empty())
                .map(cursor::decode)
                .transpose()?,
            filter,
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for FilesQuery {
    type Rejection = HubError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let query = QueryParams::from_request_parts(parts, state).await?;
        FilesQuery::parse(&query)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::queries::FilesPosition;

    fn parse(pairs: &[(&str, &str)]) -> Result<FilesQuery, HubError> {
        let params: HashMap<String, String> = pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        FilesQuery::parse(&QueryParams(params))
    }

    #[test]
    fn limit_defaults_to_100_and_must_be_1_to_1000() {
        assert_eq!(parse(&[]).unwrap().limit, 100);
        assert_eq!(parse(&[("limit", "1")]).unwrap().limit, 1);
        assert_eq!(parse(&[("limit", "1000")]).unwrap().limit, 1000);
        for bad in ["0", "1001", "abc", "", "-5", "2.5"] {
            let error = parse(&[("limit", bad)]).unwrap_err();
            assert_eq!(error.code(), "invalid_request", "limit={bad}");
        }
    }

    #[test]
    fn cursor_is_a_files_cursor_of_this_hub() {
        let issued = cursor::encode(Some("a1"), &FilesPosition::Legacy("file-42".into()));
        let after = parse(&[("cursor", &issued)]).unwrap().after.unwrap();
        assert_eq!(
            after.of(Some("a1")).unwrap(),
            FilesPosition::Legacy("file-42".into())
        );
        assert_eq!(parse(&[("cursor", "")]).unwrap().after, None);
        let feed = crate::changes::FeedCursor::encode("a1", None);
        for bad in ["not hex", &hex::encode("file-42"), &feed] {
            let error = parse(&[("cursor", bad)]).unwrap_err();
            assert_eq!(error.code(), "invalid_request", "{bad}");
        }
    }

    #[test]
    fn every_filter_is_read_into_its_typed_value() {
        let query = parse(&[
            ("parent_id", "root"),
            ("drive_id", "d1"),
            ("kind", "folder"),
            ("mime_type", "application/PDF"),
            ("name_prefix", "RePort"),
            ("path_prefix", "/Docs/"),
            ("modified_after", "2026-01-01T00:00:00+01:00"),
            ("modified_before", "2026-02-01T00:00:00Z"),
            ("deleted", "any"),
        ])
        .unwrap();
        let filter = query.filter;
        assert_eq!(filter.parent, Some(Parent::Root));
        assert_eq!(filter.drive_id.as_deref(), Some("d1"));
        assert_eq!(filter.kind, Some(FileKind::Folder));
        assert_eq!(filter.name_prefix.as_deref(), Some("report"));
        assert_eq!(filter.path_prefix.as_deref(), Some("/docs"));
        assert_eq!(
            filter.modified_after,
            Some("2025-12-31T23:00:00Z".parse().unwrap())
        );
        assert_eq!(filter.deleted, Deleted::Any);
        assert_eq!(
            parse(&[("parent_id", "abc")]).unwrap().filter.parent,
            Some(Parent::Id("abc".into()))
        );
        assert_eq!(parse(&[]).unwrap().filter, FileFilter::default());
        assert_eq!(
            parse(&[("deleted", "true")]).unwrap().filter.deleted,
            Deleted::Only
        );
    }

    #[test]
    fn unknown_parameters_and_bad_values_are_invalid_requests() {
        let long = "x".repeat(MAX_KEY_LEN + 1);
        let cases: &[(&str, &str)] = &[
            ("nosuch", "1"),
            ("parentId", "root"),
            ("parent_id", ""),
            ("parent_id", &long),
            ("drive_id", ""),
            ("kind", "document"),
            ("kind", "FILE"),
            ("mime_type", ""),
            ("name_prefix", ""),
            ("path_prefix", "docs"),
            ("path_prefix", ""),
            ("modified_after", "yesterday"),
            ("modified_before", "2026-01-01"),
            ("deleted", "yes"),
            ("deleted", ""),
        ];
        for (name, value) in cases {
            let error = parse(&[(name, value)]).unwrap_err();
            assert_eq!(error.code(), "invalid_request", "{name}={value}");
        }
    }
}
