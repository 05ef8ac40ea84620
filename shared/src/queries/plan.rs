//! Which order of the index a query reads (see the parent module), and the reading of one
//! page of it.
//!
//! A `parent_id` or `root` query reads folder listings ("steps") one after the other:
//! - `parent_id=<id>`: the folder's entries in its drive (the drive of the folder's own
//!   entry), and, for a folder with a path, the entries listed under that path (Dropbox's,
//!   which have no parent ids). A folder the index does not hold (a drive's root, whose id
//!   a client may know) is looked for in every drive of the account.
//! - `root`: for each drive, its top (entries with neither parent nor folder above them)
//!   and then the entries of its root folder, which the index never holds: the folder found
//!   by walking up from an entry of the drive until a parent is not in the index ([`MAX_DEPTH`]
//!   steps at most, from at most [`ROOT_GROUPS`] folders).

use super::{FileFilter, Parent, QueryPosition};
use crate::error::{HubError, HubResult};
use crate::model::FileEntry;
use crate::store::{past_top, place_prefix, Folder, Store};

/// How far up a walk to a drive's root goes: deeper than any real tree, and a bound on a
/// cycle an inconsistent index could hold.
pub const MAX_DEPTH: usize = 64;
/// Folders of a drive a walk to its root starts from at most: a folder whose walk ends at the
/// drive's top (a folder shared with the user, without a parent they can see) says nothing of
/// the root.
const ROOT_GROUPS: usize = 8;
/// Folder listings one page visits at most, so that a page over many empty drives ends too.
const MAX_STEPS: usize = 16;

/// One page as read: the entries kept, where the next starts (the filters' tag left for the
/// caller to fill in), and the index items read.
#[derive(Default)]
pub(super) struct Run {
    pub files: Vec<FileEntry>,
    pub next: Option<QueryPosition>,
    pub read: u64,
}

/// A folder listing of a `parent_id` query.
struct Step {
    drive: String,
    /// `None`: the drive's root, found when the step is reached.
    folder: Option<Folder>,
}

/// The cursor key of a step whose root is not found yet.
const ROOT_TO_FIND: &str = "w";

impl Step {
    fn key(&self) -> String {
        match &self.folder {
            Some(folder) => folder.key(),
            None => ROOT_TO_FIND.to_string(),
        }
    }

    /// Whether a position with folder key `key` in `drive` lies in this step.
    fn holds(&self, drive: &str, key: &str) -> bool {
        self.drive == drive
            && match &self.folder {
                Some(folder) => folder.key() == key,
                // The root's own key once found, or the mark that it is still to find.
                None => key != Folder::Top.key(),
            }
    }
}

fn position(drive: &str, key: String, after: Option<String>) -> QueryPosition {
    QueryPosition {
        filters: String::new(),
        drive: Some(drive.to_string()),
        folder: Some(key),
        after,
    }
}

fn malformed() -> HubError {
    HubError::InvalidRequest(
        "cursor names no place of this listing; start again without one".into(),
    )
}

/// Reads one page of `filter`'s listing from `start`, over the account's `drives`.
pub(super) async fn run(
    store: &dyn Store,
    account_id: &str,
    drives: &[String],
    filter: &FileFilter,
    start: Option<QueryPosition>,
    limit: usize,
) -> HubResult<Run> {
    let mut run = Run::default();
    let after = start.as_ref().and_then(|start| start.after.clone());
    if let Some(parent) = &filter.parent {
        let steps = steps(store, account_id, drives, filter, parent, &mut run.read).await?;
        return folders(store, account_id, filter, steps, start, limit, run).await;
    }
    if let Some(prefix) = &filter.path_prefix {
        let scan = store
            .list_under_path(account_id, prefix, after.as_deref(), limit)
            .await?;
        run.read += scan.read;
        run.files = keep(filter, scan.items);
        run.next = scan.next.map(|after| QueryPosition {
            filters: String::new(),
            drive: None,
            folder: None,
            after: Some(after),
        });
        return Ok(run);
    }
    if let Some(drive) = &filter.drive_id {
        let scan = store
            .list_folder(
                account_id,
                drive,
                None,
                filter.deleted.wanted(),
                after.as_deref(),
                limit,
            )
            .await?;
        run.read += scan.read;
        run.files = keep(filter, scan.items);
        run.next = scan.next.map(|after| QueryPosition {
            filters: String::new(),
            drive: Some(drive.clone()),
            folder: None,
            after: Some(after),
        });
        return Ok(run);
    }
    let page = store
        .list_files(account_id, after.as_deref(), limit)
        .await?;
    run.read += page.items.len() as u64;
    run.files = keep(filter, page.items);
    run.next = page.next.map(|after| QueryPosition {
        filters: String::new(),
        drive: None,
        folder: None,
        after: Some(after),
    });
    Ok(run)
}

fn keep(filter: &FileFilter, entries: Vec<FileEntry>) -> Vec<FileEntry> {
    entries
        .into_iter()
        .filter(|entry| filter.matches(entry))
        .collect()
}

/// The folder listings of a `parent_id` query, in order.
async fn steps(
    store: &dyn Store,
    account_id: &str,
    drives: &[String],
    filter: &FileFilter,
    parent: &Parent,
    read: &mut u64,
) -> HubResult<Vec<Step>> {
    let wanted = |drive: &String| filter.drive_id.as_ref().is_none_or(|d| d == drive);
    let drives: Vec<&String> = drives.iter().filter(|drive| wanted(drive)).collect();
    let id = match parent {
        Parent::Root => {
            return Ok(drives
                .into_iter()
                .flat_map(|drive| {
                    [
                        Step {
                            drive: drive.clone(),
                            folder: Some(Folder::Top),
                        },
                        Step {
                            drive: drive.clone(),
                            folder: None,
                        },
                    ]
                })
                .collect())
        }
        Parent::Id(id) => id,
    };
    *read += 1;
    let Some(folder) = store.get_file(account_id, id).await? else {
        return Ok(drives
            .into_iter()
            .map(|drive| Step {
                drive: drive.clone(),
                folder: Some(Folder::Id(id.clone())),
            })
            .collect());
    };
    let Some(drive) = folder.drive_id.clone().filter(wanted) else {
        return Ok(Vec::new());
    };
    let mut steps = vec![Step {
        drive: drive.clone(),
        folder: Some(Folder::Id(id.clone())),
    }];
    if let Some(path) = folder.path_key() {
        steps.push(Step {
            drive,
            folder: Some(Folder::Path(path)),
        });
    }
    Ok(steps)
}

/// Reads the steps from `start` until the page has read `limit` index items, or visited
/// [`MAX_STEPS`] listings, or the steps end.
async fn folders(
    store: &dyn Store,
    account_id: &str,
    filter: &FileFilter,
    steps: Vec<Step>,
    start: Option<QueryPosition>,
    limit: usize,
    mut run: Run,
) -> HubResult<Run> {
    let (mut at, mut after, mut resumed_root) = match start {
        None => (0, None, None),
        Some(start) => {
            let (Some(drive), Some(key)) = (start.drive.as_deref(), start.folder.as_deref()) else {
                return Err(malformed());
            };
            let at = steps
                .iter()
                .position(|step| step.holds(drive, key))
                .ok_or_else(malformed)?;
            // A root found by an earlier page is not looked for again.
            let root = (steps[at].folder.is_none() && key != ROOT_TO_FIND)
                .then(|| Folder::from_key(key).ok_or_else(malformed))
                .transpose()?;
            (at, start.after, root)
        }
    };
    let mut visited = 0;
    while at < steps.len() {
        let step = &steps[at];
        let folder = match (&step.folder, resumed_root.take()) {
            (Some(folder), _) => Some(folder.clone()),
            (None, Some(root)) => Some(root),
            (None, None) => drive_root(store, account_id, &step.drive, &mut run.read).await?,
        };
        if let Some(folder) = folder {
            let budget = limit.saturating_sub(run.read as usize).max(1);
            let scan = store
                .list_folder(
                    account_id,
                    &step.drive,
                    Some(&folder),
                    filter.deleted.wanted(),
                    after.as_deref(),
                    budget,
                )
                .await?;
            run.read += scan.read;
            run.files.extend(keep(filter, scan.items));
            if let Some(next) = scan.next {
                run.next = Some(position(&step.drive, folder.key(), Some(next)));
                return Ok(run);
            }
        }
        at += 1;
        after = None;
        visited += 1;
        if at < steps.len() && (run.read >= limit as u64 || visited >= MAX_STEPS) {
            run.next = Some(position(&steps[at].drive, steps[at].key(), None));
            return Ok(run);
        }
    }
    Ok(run)
}

/// The root folder of `drive`: the first folder, walking up from an entry of the drive, that
/// the index does not hold. `None` when every walk ends at the drive's top or at a path
/// (Dropbox: its top is all there is).
async fn drive_root(
    store: &dyn Store,
    account_id: &str,
    drive: &str,
    read: &mut u64,
) -> HubResult<Option<Folder>> {
    let mut after = past_top();
    for _ in 0..ROOT_GROUPS {
        let scan = store
            .list_folder(account_id, drive, None, None, Some(&after), 1)
            .await?;
        *read += scan.read;
        let Some(entry) = scan.items.first() else {
            return Ok(None);
        };
        let group = Folder::of(entry);
        let Folder::Id(mut id) = group.clone() else {
            return Ok(None);
        };
        for _ in 0..MAX_DEPTH {
            *read += 1;
            match store.get_file(account_id, &id).await? {
                None => return Ok(Some(Folder::Id(id))),
                Some(up) => match Folder::of(&up) {
                    Folder::Id(above) => id = above,
                    Folder::Top | Folder::Path(_) => break,
                },
            }
        }
        // Past every place of this folder: its key is followed by file ids, which are text.
        after = format!("{}\u{10FFFF}", place_prefix(&group));
    }
    Ok(None)
}
