//! CI: the step times of the last `.ci/run` this checkout holds (`target/ci-times.txt`,
//! which `.ci/run` writes as it ends), against the round's target of 15 minutes.

use std::fmt::Write as _;
use std::path::Path;

/// The round's target for a clean-clone `.ci/run` on this 2-core machine.
const TARGET_SECONDS: u64 = 15 * 60;

pub(super) fn section_ci(md: &mut String, results_dir: &Path) {
    md.push_str("## 13. CI\n\n");
    let file = results_dir
        .parent()
        .unwrap_or(results_dir)
        .join("ci-times.txt");
    let Ok(times) = std::fs::read_to_string(&file) else {
        md.push_str(
            "**Not run** (no `target/ci-times.txt`: `.ci/run` writes it as it ends; copy it from \
             the clean clone the run was made in).\n\n",
        );
        return;
    };
    let _ = writeln!(
        md,
        "The step times of a `.ci/run` on a clean clone of `main`, as it printed them (each \
         step's wall time):\n\n```text\n{}```\n",
        times
    );
    if let Some(total) = total_seconds(&times) {
        let verdict = if total <= TARGET_SECONDS {
            "target met"
        } else {
            "target missed"
        };
        let _ = writeln!(
            md,
            "Total {} min {} s against the target of {} min: {verdict}.\n",
            total / 60,
            total % 60,
            TARGET_SECONDS / 60
        );
    }
}

/// The `ci: total <n>s` line's seconds.
fn total_seconds(times: &str) -> Option<u64> {
    times.lines().find_map(|line| {
        line.trim()
            .strip_prefix("ci: total ")?
            .strip_suffix('s')?
            .parse()
            .ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_total_of_ci_runs_report() {
        let times = "ci: step times (2026-12-08 01:00 UTC, commit abc1234)\n  \
                     612s  ./scripts/test\nci: total 1234s\n";
        assert_eq!(total_seconds(times), Some(1234));
        assert_eq!(total_seconds("ci: step times\n"), None);
    }
}
