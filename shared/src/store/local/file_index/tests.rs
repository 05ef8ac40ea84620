//! The index's own migration, from the inside.

use super::*;

fn entry(id: &str, parent: &str, path: Option<&str>) -> FileEntry {
    FileEntry {
        parent_ids: Some(vec![parent.to_string()]),
        drive_id: Some("d".into()),
        path: path.map(str::to_string),
        path_lower: path.map(str::to_lowercase),
        ..FileEntry::new(id, id)
    }
}

/// An index written before `places` and `paths` existed gets them when opened, once.
#[test]
fn an_index_of_the_earlier_layout_is_migrated_when_opened() {
    let dir = tempfile::tempdir().unwrap();
    let files = [
        entry("a", "top", Some("/A")),
        entry("b", "a", Some("/A/b")),
        entry("c", "a", None),
    ];
    {
        let index = FileIndex::open(dir.path()).unwrap();
        index.put("acct", &files, 1, 1, Utc::now()).unwrap();
        // As the earlier version left it: entries and feed only, no schema mark.
        let mut txn = index.write().unwrap();
        index.places.clear(&mut txn).unwrap();
        index.paths.clear(&mut txn).unwrap();
        index.meta.clear(&mut txn).unwrap();
        txn.commit().unwrap();
        let folder = Folder::Id("a".into());
        let scan = index
            .folder_page("acct", "d", Some(&folder), None, None, 10)
            .unwrap();
        assert!(scan.items.is_empty());
    }
    let index = FileIndex::open(dir.path()).unwrap();
    let folder = Folder::Id("a".into());
    let scan = index
        .folder_page("acct", "d", Some(&folder), None, None, 10)
        .unwrap();
    let ids: Vec<&str> = scan.items.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["b", "c"]);
    let (under, _) = index.path_page("acct", "/a", None, 10).unwrap();
    assert_eq!(under.items.len(), 2);
    assert_eq!(under.read, 2);
    let txn = index.read().unwrap();
    assert_eq!(
        index.meta.get(&txn, SCHEMA_KEY).unwrap(),
        Some(&SCHEMA.to_be_bytes()[..])
    );
}
