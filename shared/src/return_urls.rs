//! Where a connect session may send the browser back to (`HUB_ALLOWED_RETURN_URLS`): the
//! allowlist read with the configuration, and the check of a `return_to` against it.
//!
//! A value of the configuration, below every service: [`crate::config`] reads it and
//! [`crate::connect`] asks it, so it sits under both rather than in either.

use url::Url;

/// The longest `return_to` the hub keeps (browsers and servers commonly cap URLs near 2 KiB
/// too; a longer one is no legitimate app page).
pub const MAX_RETURN_TO_LEN: usize = 2048;

/// `HUB_ALLOWED_RETURN_URLS`: where sessions may send the browser back to. Compared by
/// scheme, host (without case), port (default ports made explicit) and path prefix on a
/// segment boundary, never by string prefix, so `https://app.example.com.evil.net` does not
/// pass for `https://app.example.com`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReturnAllowlist {
    entries: Vec<AllowedReturn>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct AllowedReturn {
    scheme: String,
    host: String,
    port: u16,
    /// The path: a `return_to`'s path equals it or starts with `path_prefix`.
    path: String,
    /// The path followed by `/`, unless it already ends with one.
    path_prefix: String,
}

impl ReturnAllowlist {
    /// Reads the comma-separated list; an entry that is not an absolute http(s) URL without
    /// user info, query or fragment is an error naming it.
    pub fn parse(raw: Option<&str>) -> Result<Self, String> {
        let mut entries = Vec::new();
        for entry in raw.unwrap_or_default().split(',').map(str::trim) {
            if entry.is_empty() {
                continue;
            }
            let url = checked_absolute(entry).ok_or_else(|| {
                format!(
                    "'{entry}' is not an absolute http(s) URL without user info or dot segments"
                )
            })?;
            if url.query().is_some() || url.fragment().is_some() {
                return Err(format!("'{entry}' must not have a query or fragment"));
            }
            let mut path_prefix = url.path().to_string();
            if !path_prefix.ends_with('/') {
                path_prefix.push('/');
            }
            entries.push(AllowedReturn {
                path: url.path().to_string(),
                scheme: url.scheme().to_string(),
                host: url.host_str().unwrap_or_default().to_ascii_lowercase(),
                port: url.port_or_known_default().unwrap_or_default(),
                path_prefix,
            });
        }
        Ok(ReturnAllowlist { entries })
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether a session may return to `candidate`.
    pub fn allows(&self, candidate: &str) -> bool {
        let Some(url) = checked_absolute(candidate) else {
            return false;
        };
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let port = url.port_or_known_default().unwrap_or_default();
        let path = url.path();
        self.entries.iter().any(|allowed| {
            allowed.scheme == url.scheme()
                && allowed.host == host
                && allowed.port == port
                && (path == allowed.path || path.starts_with(&allowed.path_prefix))
        })
    }
}

/// `raw` as a URL, when it is written as an absolute http(s) URL (`scheme://host...`, not a
/// relative, scheme-relative or slash-less form the parser would complete), with no user
/// info, no backslash or control character, and no dot segment, plain or percent-encoded.
/// The raw string is checked as well as the parsed one: the parser resolves `..` away, and
/// a browser or server behind `return_to` may decode what the parser keeps encoded.
fn checked_absolute(raw: &str) -> Option<Url> {
    if raw.len() > MAX_RETURN_TO_LEN
        || raw
            .bytes()
            .any(|b| b.is_ascii_control() || b == b' ' || b == b'\\')
    {
        return None;
    }
    let lower = raw.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))?;
    // The authority ends at the first `/`, `?` or `#`; an `@` in it is user info.
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, after) = rest.split_at(authority_end);
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let raw_path = &after[..after.find(['?', '#']).unwrap_or(after.len())];
    if has_dot_segment(raw_path) {
        return None;
    }
    let url = Url::parse(raw).ok()?;
    if !url.username().is_empty() || url.password().is_some() || url.host_str().is_none() {
        return None;
    }
    if has_dot_segment(url.path()) {
        return None;
    }
    Some(url)
}

/// Whether a path has a `.` or `..` segment once percent-decoded (`%2e%2e`, and `%252e` for a
/// server that decodes twice), also where an encoded slash (`%2f`, `%5c`) would make one.
fn has_dot_segment(path: &str) -> bool {
    let mut text = path.to_string();
    for _ in 0..DECODING_ROUNDS {
        if text
            .split(['/', '\\'])
            .any(|segment| segment == "." || segment == "..")
        {
            return true;
        }
        let decoded = percent_encoding::percent_decode_str(&text)
            .decode_utf8_lossy()
            .into_owned();
        if decoded == text {
            return false;
        }
        text = decoded;
    }
    // Still encoded after that many rounds: no app page looks like that.
    true
}

/// How many layers of percent-encoding [`has_dot_segment`] looks through.
const DECODING_ROUNDS: usize = 4;

#[cfg(test)]
mod tests {
    use super::*;

    fn allowlist(raw: &str) -> ReturnAllowlist {
        ReturnAllowlist::parse(Some(raw)).unwrap()
    }

    #[test]
    fn the_documented_examples() {
        let list = allowlist("https://app.example.com/return");
        assert!(list.allows("https://app.example.com/return"));
        assert!(list.allows("https://app.example.com/return/x"));
        assert!(list.allows("https://app.example.com/return/x?tab=drives#top"));
        assert!(list.allows("https://app.example.com/return?from=hub"));
        assert!(!list.allows("https://app.example.com/returnx"));
        assert!(!list.allows("https://app.example.com/"));
        assert!(!list.allows("https://app.example.com/admin"));
    }

    #[test]
    fn a_path_ending_with_a_slash_allows_what_lies_under_it() {
        let list = allowlist("https://app.example.com/cb/");
        assert!(list.allows("https://app.example.com/cb/"));
        assert!(list.allows("https://app.example.com/cb/done"));
        assert!(!list.allows("https://app.example.com/cb"));
        let root = allowlist("https://app.example.com");
        assert!(root.allows("https://app.example.com"));
        assert!(root.allows("https://app.example.com/anything/at/all"));
    }

    #[test]
    fn hosts_compare_without_case_and_only_whole() {
        let list = allowlist("https://App.Example.com/return");
        assert!(list.allows("https://APP.EXAMPLE.COM/return"));
        assert!(list.allows("https://app.example.com/return"));
        for refused in [
            "https://app.example.com.evil.net/return",
            "https://evil.net/return",
            "https://evilapp.example.com/return",
            "https://sub.app.example.com/return",
            "https://app.example.com./return",
        ] {
            assert!(!list.allows(refused), "{refused}");
        }
    }

    #[test]
    fn user_info_is_refused() {
        let list = allowlist("https://app.example.com");
        for refused in [
            "https://app.example.com@evil.net",
            "https://app.example.com@evil.net/return",
            "https://user@app.example.com/return",
            "https://user:pass@app.example.com/return",
            "https://app.example.com%40evil.net/",
        ] {
            assert!(!list.allows(refused), "{refused}");
        }
        assert!(ReturnAllowlist::parse(Some("https://u:p@app.example.com")).is_err());
    }

    #[test]
    fn relative_and_scheme_relative_forms_are_refused() {
        let list = allowlist("https://app.example.com");
        for refused in [
            "//evil.net",
            "/\\evil.net",
            "\\\\evil.net",
            "/return",
            "return",
            "https:evil.net",
            "https:/app.example.com/",
            "https:\\\\app.example.com\\",
            "https://app.example.com\\@evil.net",
            "javascript:alert(1)",
            "data:text/html,hi",
            "",
            " https://app.example.com/",
            "https://app.example.com/\n",
        ] {
            assert!(!list.allows(refused), "{refused:?}");
        }
    }

    #[test]
    fn dot_segments_are_refused_plain_or_encoded() {
        let list = allowlist("https://app.example.com/return");
        for refused in [
            "https://app.example.com/return/../admin",
            "https://app.example.com/return/./x",
            "https://app.example.com/return/..",
            "https://app.example.com/return/%2e%2e/admin",
            "https://app.example.com/return/%2E%2E/admin",
            "https://app.example.com/return/.%2e/admin",
            "https://app.example.com/return/%2e/x",
            "https://app.example.com/return/..%2fadmin",
            "https://app.example.com/return%2f..%2fadmin",
            "https://app.example.com/return/..%5cadmin",
            "https://app.example.com/return/%252e%252e/admin",
        ] {
            assert!(!list.allows(refused), "{refused}");
        }
        // Dots inside a segment are only a name.
        assert!(list.allows("https://app.example.com/return/v1.2..3"));
        assert!(list.allows("https://app.example.com/return/...x"));
    }

    #[test]
    fn scheme_and_port_must_match_with_default_ports_explicit() {
        let list = allowlist("https://app.example.com/return");
        assert!(!list.allows("http://app.example.com/return"));
        assert!(!list.allows("https://app.example.com:8443/return"));
        assert!(list.allows("https://app.example.com:443/return"));
        let explicit = allowlist("https://app.example.com:443/return");
        assert!(explicit.allows("https://app.example.com/return"));
        let local = allowlist("http://127.0.0.1:8080/done");
        assert!(local.allows("http://127.0.0.1:8080/done?x=1"));
        assert!(!local.allows("http://127.0.0.1:8081/done"));
        assert!(!local.allows("http://127.0.0.1/done"));
        let plain = allowlist("http://app.example.com");
        assert!(plain.allows("http://app.example.com:80/x"));
    }

    #[test]
    fn several_entries_and_an_empty_list() {
        let list = allowlist(" https://a.example/x , http://localhost:3000/cb ");
        assert!(list.allows("https://a.example/x/y"));
        assert!(list.allows("http://localhost:3000/cb"));
        assert!(!list.allows("http://localhost:3000/other"));
        let none = ReturnAllowlist::parse(None).unwrap();
        assert!(none.is_empty());
        assert!(!none.allows("https://a.example/x"));
    }

    #[test]
    fn malformed_entries_are_errors() {
        for bad in [
            "not a url",
            "/relative",
            "ftp://files.example/",
            "https://app.example.com/a/../b",
            "https://app.example.com/?q=1",
            "https://app.example.com/#f",
        ] {
            assert!(ReturnAllowlist::parse(Some(bad)).is_err(), "{bad}");
        }
    }
}
