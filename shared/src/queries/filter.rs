//! The filters of `GET /users/{id}/files` (docs/API.md, "Files"), checked values only: the
//! HTTP layer parses them (`crate::web`), [`FileFilter::matches`] applies them.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::model::{path_key, FileEntry, FileKind};

/// Which entries `deleted` keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Deleted {
    /// `false`, the default: no tombstones.
    #[default]
    Live,
    /// `true`: tombstones only.
    Only,
    /// `any`: both.
    Any,
}

impl Deleted {
    /// What a store's listing keeps: `Some(deleted)` for the one state, `None` for both.
    pub fn wanted(self) -> Option<bool> {
        match self {
            Deleted::Live => Some(false),
            Deleted::Only => Some(true),
            Deleted::Any => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Deleted::Live => "false",
            Deleted::Only => "true",
            Deleted::Any => "any",
        }
    }
}

/// `parent_id`: a folder's id, or `root`, the top level of each drive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parent {
    Root,
    Id(String),
}

/// Every filter of a query, combined with AND; the default keeps every live entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileFilter {
    pub parent: Option<Parent>,
    pub drive_id: Option<String>,
    pub kind: Option<FileKind>,
    /// Compared without ASCII case, as media types are (RFC 2045, section 5.1).
    pub mime_type: Option<String>,
    /// In lower case ([`lower`]): names are compared without case.
    pub name_prefix: Option<String>,
    /// A path in lower case ([`path_key`]), without a trailing `/` (but `/` itself).
    pub path_prefix: Option<String>,
    /// Entries modified strictly after it.
    pub modified_after: Option<DateTime<Utc>>,
    /// Entries modified strictly before it.
    pub modified_before: Option<DateTime<Utc>>,
    pub deleted: Deleted,
}

/// A name or prefix as compared: in lower case.
pub fn lower(text: &str) -> String {
    text.to_lowercase()
}

/// A path prefix as compared: lower case as entries' path keys are, without a trailing `/`
/// (`/Docs/` is the folder `/docs`); `/` stays `/`, every path.
pub fn path_prefix(path: &str) -> String {
    let key = path_key(path);
    match key.trim_end_matches('/') {
        "" => "/".to_string(),
        trimmed => trimmed.to_string(),
    }
}

/// Whether path key `key` is `prefix` or lies under it: on a segment boundary, so that
/// `/a/b` holds `/a/b/c` but not `/a/bc`.
pub fn under_path(key: &str, prefix: &str) -> bool {
    if prefix == "/" {
        return key.starts_with('/');
    }
    key.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

impl FileFilter {
    /// Whether `entry` passes every filter but `parent_id`, which the listing's source
    /// answers (see `super::plan`).
    pub fn matches(&self, entry: &FileEntry) -> bool {
        let deleted = match self.deleted {
            Deleted::Live => !entry.deleted,
            Deleted::Only => entry.deleted,
            Deleted::Any => true,
        };
        let modified = |bound: Option<DateTime<Utc>>, after: bool| match bound {
            None => true,
            Some(bound) => {
                entry
                    .modified_at
                    .is_some_and(|at| if after { at > bound } else { at < bound })
            }
        };
        deleted
            && self
                .drive_id
                .as_ref()
                .is_none_or(|drive| entry.drive_id.as_ref() == Some(drive))
            && self.kind.is_none_or(|kind| entry.kind == Some(kind))
            && self.mime_type.as_ref().is_none_or(|mime| {
                entry
                    .mime_type
                    .as_ref()
                    .is_some_and(|m| m.eq_ignore_ascii_case(mime))
            })
            && self
                .name_prefix
                .as_ref()
                .is_none_or(|prefix| lower(&entry.name).starts_with(prefix.as_str()))
            && self
                .path_prefix
                .as_ref()
                .is_none_or(|prefix| entry.path_key().is_some_and(|key| under_path(&key, prefix)))
            && modified(self.modified_after, true)
            && modified(self.modified_before, false)
    }

    /// Whether it is the default query: every live entry.
    pub fn is_default(&self) -> bool {
        *self == FileFilter::default()
    }

    /// A short digest of the filters, which a cursor carries so that it is taken only with
    /// the filters it was issued with. Each value is written with its length, so that no two
    /// queries write the same text.
    pub fn tag(&self) -> String {
        let field = |name: &str, value: Option<String>| match value {
            Some(value) => format!("{name}{}:{value};", value.len()),
            None => format!("{name}-;"),
        };
        let parent = self.parent.as_ref().map(|parent| match parent {
            Parent::Root => "root".to_string(),
            Parent::Id(id) => format!("id:{id}"),
        });
        let kind = self.kind.map(|kind| format!("{kind:?}"));
        let time = |at: Option<DateTime<Utc>>| at.map(|at| at.to_rfc3339());
        let canonical = [
            field("parent", parent),
            field("drive", self.drive_id.clone()),
            field("kind", kind),
            field(
                "mime",
                self.mime_type.as_deref().map(str::to_ascii_lowercase),
            ),
            field("name", self.name_prefix.clone()),
            field("path", self.path_prefix.clone()),
            field("after", time(self.modified_after)),
            field("before", time(self.modified_before)),
            field("deleted", Some(self.deleted.name().to_string())),
        ]
        .concat();
        hex::encode(&Sha256::digest(canonical.as_bytes())[..8])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_prefix_holds_what_lies_on_a_segment_boundary_under_it() {
        assert!(under_path("/a/b", "/a/b"));
        assert!(under_path("/a/b/c.txt", "/a/b"));
        assert!(!under_path("/a/bc", "/a/b"));
        assert!(!under_path("/a", "/a/b"));
        assert!(under_path("/x", "/"));
        assert_eq!(path_prefix("/Docs/"), "/docs");
        assert_eq!(path_prefix("/"), "/");
    }

    #[test]
    fn filters_of_different_values_have_different_tags() {
        let default = FileFilter::default();
        let tombstones = FileFilter {
            deleted: Deleted::Only,
            ..FileFilter::default()
        };
        let named = |name: &str| FileFilter {
            name_prefix: Some(name.into()),
            ..FileFilter::default()
        };
        assert_eq!(default.tag(), FileFilter::default().tag());
        assert_ne!(default.tag(), tombstones.tag());
        assert_ne!(named("a").tag(), named("b").tag());
        assert_ne!(named("a").tag(), default.tag());
    }

    #[test]
    fn names_match_without_case_and_times_strictly() {
        let mut entry = FileEntry::new("f1", "Report.PDF");
        entry.modified_at = Some("2026-01-02T00:00:00Z".parse().unwrap());
        let filter = FileFilter {
            name_prefix: Some(lower("REP")),
            modified_after: Some("2026-01-01T00:00:00Z".parse().unwrap()),
            ..FileFilter::default()
        };
        assert!(filter.matches(&entry));
        let at_the_bound = FileFilter {
            modified_after: entry.modified_at,
            ..FileFilter::default()
        };
        assert!(!at_the_bound.matches(&entry));
        entry.deleted = true;
        assert!(!filter.matches(&entry));
    }
}
