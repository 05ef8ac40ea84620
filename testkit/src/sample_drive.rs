//! A small, realistic drive for each provider's default user, for the click-through demo
//! (`fake-providers --sample-drive`, which `scripts/dev` runs without OAuth clients): a few
//! folders and the kind of files people keep, so the demo's file list reads like a real one.

use chrono::{Duration, TimeZone, Utc};

use crate::handle::Handle;
use crate::state::{FileSpec, Provider};

/// (name, MIME type, size in bytes, folder index in the drive's folders or `None` for the
/// root).
type SampleFile = (&'static str, &'static str, u64, Option<usize>);

/// One provider's sample drive: its folders and files. Each provider's differs, as two
/// people's drives do, so that the demo shows which drive a list came from.
struct Sample {
    folders: [&'static str; 3],
    files: &'static [SampleFile],
}

const PDF: &str = "application/pdf";
const DOCX: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
const PPTX: &str = "application/vnd.openxmlformats-officedocument.presentationml.presentation";

const GOOGLE: Sample = Sample {
    folders: ["Recipes", "Travel", "School"],
    files: &[
        ("Lasagne.pdf", PDF, 120_311, Some(0)),
        ("Sourdough starter.txt", "text/plain", 1_204, Some(0)),
        ("Kyoto itinerary.pdf", PDF, 301_877, Some(1)),
        ("Passport scan.jpg", "image/jpeg", 2_044_102, Some(1)),
        ("Science project.pptx", PPTX, 5_301_220, Some(2)),
        ("Reading list.txt", "text/plain", 418, None),
    ],
};

const MICROSOFT: Sample = Sample {
    folders: ["Documents", "Pictures", "Work"],
    files: &[
        ("CV 2026.docx", DOCX, 41_730, Some(0)),
        ("Household budget.xlsx", XLSX, 28_410, Some(0)),
        ("Holiday in Crete.jpg", "image/jpeg", 4_102_553, Some(1)),
        ("Team offsite.pptx", PPTX, 7_840_100, Some(2)),
        ("Sprint planning.docx", DOCX, 19_002, Some(2)),
        ("Shopping list.txt", "text/plain", 312, None),
    ],
};

const DROPBOX: Sample = Sample {
    folders: ["Projects", "Photos", "Taxes 2025"],
    files: &[
        ("Quarterly report Q3.pdf", PDF, 482_133, Some(0)),
        ("Roadmap 2026.xlsx", XLSX, 58_211, Some(0)),
        ("Kick-off meeting notes.docx", DOCX, 23_840, Some(0)),
        ("Lisbon sunset.jpg", "image/jpeg", 3_210_554, Some(1)),
        ("Birthday party.mp4", "video/mp4", 48_392_011, Some(1)),
        ("Tax return 2025.pdf", PDF, 201_009, Some(2)),
        ("Receipts.zip", "application/zip", 1_204_330, Some(2)),
        ("Shopping list.txt", "text/plain", 312, None),
    ],
};

/// Box's tree gives its items' ids and sizes itself (`add_sample_box`): the sizes here are
/// not used.
const BOX: Sample = Sample {
    folders: ["Contracts", "Design", "Invoices"],
    files: &[
        ("NDA Acme.pdf", PDF, 0, Some(0)),
        ("Logo final.png", "image/png", 0, Some(1)),
        ("Design brief.docx", DOCX, 0, Some(1)),
        ("Invoice 0042.pdf", PDF, 0, Some(2)),
        ("Invoice 0043.pdf", PDF, 0, Some(2)),
        ("Welcome.txt", "text/plain", 0, None),
    ],
};

fn sample(provider: Provider) -> &'static Sample {
    match provider {
        Provider::Google => &GOOGLE,
        Provider::Microsoft => &MICROSOFT,
        Provider::Dropbox => &DROPBOX,
        Provider::Box => &BOX,
    }
}

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
    let Sample { folders, files } = sample(provider);
    let folders = folders.iter().enumerate().map(|(n, name)| {
        let mut folder = FileSpec::folder(id(n), *name);
        folder.modified_time = start + Duration::days(n as i64);
        folder
    });
    let folder_count = folders.len();
    let files = files
        .iter()
        .enumerate()
        .map(move |(n, (name, mime_type, size, folder))| {
            let mut file = FileSpec::new(id(folder_count + n), *name);
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
    let folders: Vec<String> = BOX
        .folders
        .iter()
        .map(|name| handle.box_add_folder(user, name, crate::BOX_ROOT_ID))
        .collect();
    for (name, _, _, folder) in BOX.files {
        let parent = folder.map_or(crate::BOX_ROOT_ID, |n| folders[n].as_str());
        handle.box_add_file(user, name, parent);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each provider's drive holds folders and files of its own, with sizes and times.
    #[test]
    fn each_provider_has_a_drive_of_its_own() {
        let names = |provider| -> Vec<String> {
            sample_drive(provider)
                .into_iter()
                .map(|item| item.name)
                .collect()
        };
        let all = [
            Provider::Google,
            Provider::Microsoft,
            Provider::Dropbox,
            Provider::Box,
        ];
        for (n, a) in all.iter().enumerate() {
            let drive = sample_drive(*a);
            assert!(drive.iter().filter(|item| item.is_folder()).count() >= 3);
            assert!(drive
                .iter()
                .any(|item| item.parent.is_some() && !item.is_folder()));
            for b in &all[n + 1..] {
                let (a_names, b_names) = (names(*a), names(*b));
                let shared = a_names.iter().filter(|name| b_names.contains(name)).count();
                assert!(shared * 2 < a_names.len(), "{a:?} and {b:?} share {shared}");
            }
        }
    }
}
