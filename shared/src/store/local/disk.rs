//! Records as files: atomic, durable writes and removals, reads in key order, and what an
//! account's file holds (read by the accounts and by the channels kept alive with them).

use super::*;

pub(super) fn file_name(key: &str) -> String {
    format!("{}.json", hex::encode(key))
}

pub(super) fn key_of(name: &str) -> Option<String> {
    let hex_part = name.strip_suffix(".json")?;
    String::from_utf8(hex::decode(hex_part).ok()?).ok()
}

pub(super) fn read_json<T: DeserializeOwned>(path: &Path) -> io::Result<Option<T>> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(io::Error::other),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes beside the target, flushes to disk, then renames over it: readers see the old file
/// or the new one, never a torn write. The directory is synced by the caller
/// ([`sync_dir`]), once per batch.
pub(super) fn write_file<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    let dir = path.parent().expect("store paths have a parent");
    let tmp = dir.join(format!(".tmp-{}", uuid::Uuid::new_v4()));
    let result = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(&serde_json::to_vec(value).map_err(io::Error::other)?)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Makes renames and removals in `dir` durable.
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

pub(super) fn write_durably<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    write_file(path, value)?;
    sync_dir(path.parent().expect("store paths have a parent"))
}

pub(super) fn remove_durably(path: &Path) -> io::Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => sync_dir(path.parent().expect("store paths have a parent")).map(|_| true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// The record names of a directory in key order, after `after`.
pub(super) fn sorted_names(dir: &Path, after: Option<&str>) -> io::Result<Vec<String>> {
    let after = after.map(file_name);
    let mut names = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(names),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !name.ends_with(".json") {
            continue;
        }
        if after.as_ref().is_none_or(|after| &name > after) {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Reads records in name order until `limit` pass `keep`; the page's next key is the last
/// kept record's key when the page is full.
pub(super) fn read_page<T: DeserializeOwned>(
    dir: &Path,
    after: Option<&str>,
    limit: usize,
    mut keep: impl FnMut(&T) -> bool,
) -> io::Result<Page<T>> {
    let mut items = Vec::new();
    let mut last_key = None;
    for name in sorted_names(dir, after)? {
        if items.len() == limit {
            break;
        }
        // A record deleted since the directory was read is simply skipped.
        if let Some(item) = read_json::<T>(&dir.join(&name))? {
            if keep(&item) {
                items.push(item);
                last_key = key_of(&name);
            }
        }
    }
    let next = if items.len() == limit { last_key } else { None };
    Ok(Page { items, next })
}

/// What an account's file holds: the account, or the tombstone of its delete in its place
/// (told apart by the tombstone's `deleting_since`, which an account never has).
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
pub(super) enum AccountFile {
    Deleting(Box<Deletion>),
    Live(Box<Account>),
}

impl AccountFile {
    pub(super) fn live(self) -> Option<Account> {
        match self {
            AccountFile::Live(account) => Some(*account),
            AccountFile::Deleting(_) => None,
        }
    }

    pub(super) fn deleting(self) -> Option<Deletion> {
        match self {
            AccountFile::Deleting(deletion) => Some(*deletion),
            AccountFile::Live(_) => None,
        }
    }
}

/// The live account stored at `path`: `None` for a tombstone too.
pub(super) fn read_account(path: &Path) -> io::Result<Option<Account>> {
    Ok(read_json::<AccountFile>(path)?.and_then(AccountFile::live))
}
