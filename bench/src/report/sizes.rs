//! Release sizes: each function's binary and zip.

use std::fmt::Write as _;

use super::not_run;
use crate::sizes;

pub(super) fn section_sizes(md: &mut String, results: Option<&sizes::Results>) {
    md.push_str("## 5. Release sizes\n\n");
    let Some(r) = results else {
        return not_run(md, "sizes");
    };
    let how = match r.build_seconds {
        Some(s) => format!("built by this run in {s:.0} s"),
        None => "reused: newer than every source file".into(),
    };
    let _ = writeln!(
        md,
        "`cargo lambda build --release --arm64 --output-format zip` (zig cross-build; {how}).\n"
    );
    md.push_str("| function | arm64 `bootstrap.zip` (bytes) | MB | native x86_64 binary (MB) |\n|---|---|---|---|\n");
    for f in &r.functions {
        let _ = writeln!(
            md,
            "| `{}` | {} | {:.2} | {} |",
            f.function,
            f.zip_bytes,
            f.zip_bytes as f64 / 1e6,
            f.native_binary_bytes
                .map_or("-".into(), |b| format!("{:.2}", b as f64 / 1e6))
        );
    }
    md.push('\n');
}

/// What the sizes call for (a line of "What the figures call for").
pub(super) fn observe_sizes(md: &mut String, r: &sizes::Results) {
    let largest = r.functions.iter().map(|f| f.zip_bytes).max().unwrap_or(0);
    let _ = writeln!(
        md,
        "- **Package size**: the largest zip is {:.1} MB, far under Lambda's 50 MB zipped limit; \
         every function carries the whole `hub` library and the three AWS SDK clients, and at \
         this size that costs nothing worth splitting for.",
        largest as f64 / 1e6
    );
}
