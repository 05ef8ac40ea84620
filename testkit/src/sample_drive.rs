//! A small, realistic drive for each provider's default user, for the click-through demo
//! (`fake-providers --sample-drive`, which `scripts/dev` runs without OAuth clients): a few
//! folders and the kind of files people keep, so the demo's file list reads like a real one.

use chrono::{Duration, TimeZone, Utc};

use crate::handle::Handle;
use crate::state::{FileSpec, Provider};

/// (name, MIME type, size in bytes, folder index in [`FOLDERS`] or `None` for the root).
type SampleFile = (&'static str, &'static str, u64, Option<usize>);

const FOLDERS: [&str; 3] = ["Projects", "Photos", "Taxes 2025"];

const FILES: [SampleFile; 8] = [
    (
        "Quarterly report Q3.pdf",
        "application/pdf",
        482_133,
        Some(0),
    ),
    (
        "Roadmap 2026.xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        58_211,
        Some(0),
    ),
    (
        "Kick-off meeting notes.docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        23_840,
        Some(0),
    ),
    ("Lisbon sunset.jpg", "image/jpeg", 3_210_554, Some(1)),
    ("Birthday party.mp4", "video/mp4", 48_392_011, Some(1)),
    ("Tax return 2025.pdf", "application/pdf", 201_009, Some(2)),
    ("Receipts.zip", "application/zip", 1_204_330, Some(2)),
    ("Shopping list.txt", "text/plain", 312, None),
];

/// What `Shopping list.txt` holds in the Microsoft and Dropbox sample drives, served by their
/// download links: what the demo's download is compared with.
pub const SHOPPING_LIST: &[u8] = b"Oat milk\nEggs (6)\nSourdough bread\nTomatoes\nBasil\n\
Olive oil\nParmesan\nCoffee beans\n";

/// The sample drive's items for `provider`, folders first, with ids shaped like the
/// provider's.
pub fn sample_drive(provider: Provider) -> Vec<FileSpec> {
    let id = |n: usize| match provider {
        Provider::Google => format!("1sAmPlEdRiVe{n:02}xQz"),
        Provider::Microsoft => format!("5A3C0FFEE5A3C0FF!1{n:02}"),
        Provider::Dropbox => format!("id:sAmPlEdRiVe{n:02}AAAAAAAAB"),
        // Box's tree gives its own ids (`add_sample_drives`).
        Provider::Box => format!("{n}"),
    };
    let start = Utc.with_ymd_and_hms(2025, 9, 1, 9, 30, 0).unwrap();
    let folders = FOLDERS.iter().enumerate().map(|(n, name)| {
        let mut folder = FileSpec::folder(id(n), *name);
        folder.modified_time = start + Duration::days(n as i64);
        folder
    });
    let files = FILES
        .iter()
        .enumerate()
        .map(|(n, (name, mime_type, size, folder))| {
            let mut file = FileSpec::new(id(FOLDERS.len() + n), *name);
            file.mime_type = mime_type.to_string();
            file.size = Some(*size);
            file.modified_time = start + Duration::days(3) + Duration::hours(7 * n as i64);
            file.parent = folder.map(id);
            file
        });
    folders.chain(files).collect()
}

/// Puts the sample drive into each provider's default user's drive.
pub fn add_sample_drives(handle: &Handle) {
    for provider in [Provider::Google, Provider::Microsoft, Provider::Dropbox] {
        for item in sample_drive(provider) {
            let shopping_list = item.name == "Shopping list.txt";
            let id = item.id.clone();
            handle.add_file(provider, provider.default_user(), item);
            if shopping_list && provider != Provider::Google {
                handle.set_file_bytes(provider, provider.default_user(), &id, SHOPPING_LIST);
            }
        }
    }
    add_sample_box(handle, Provider::Box.default_user());
    add_sample_google_content(handle, Provider::Google.default_user());
}

/// Drive's bytes to read through the hub's content route: a binary file holding every byte
/// value (0 to 255, four times over), and a Google Doc, which only exports.
fn add_sample_google_content(handle: &Handle, user: &str) {
    let every_byte: Vec<u8> = (0..1024).map(|i| (i % 256) as u8).collect();
    let binary = FileSpec {
        mime_type: "application/octet-stream".into(),
        ..FileSpec::new("1sAmPlEdRiVeByTeSxQz", "Every byte.bin")
    };
    handle.add_file(Provider::Google, user, binary);
    handle.set_google_content(user, "1sAmPlEdRiVeByTeSxQz", &every_byte);
    let doc = FileSpec {
        mime_type: "application/vnd.google-apps.document".into(),
        size: None,
        ..FileSpec::new("1sAmPlEdRiVeDoCxQz", "Meeting agenda")
    };
    handle.add_file(Provider::Google, user, doc);
}

/// The same folders and files in the Box user's tree, whose ids Box gives (a file and a
/// folder may share one).
fn add_sample_box(handle: &Handle, user: &str) {
    let folders: Vec<String> = FOLDERS
        .iter()
        .map(|name| handle.box_add_folder(user, name, crate::BOX_ROOT_ID))
        .collect();
    for (name, _, _, folder) in FILES {
        let parent = folder.map_or(crate::BOX_ROOT_ID, |n| folders[n].as_str());
        handle.box_add_file(user, name, parent);
    }
}
