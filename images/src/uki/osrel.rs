//! The os-release text a UKI carries in `.osrel` (os-release(5): `KEY=value` lines,
//! values optionally quoted with shell-style backslash escapes).

/// The fields of an os-release file, in file order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OsRelease {
    pub fields: Vec<(String, String)>,
}

impl OsRelease {
    /// Parses os-release text; lines that are not assignments (comments, blanks,
    /// garbage) are skipped, as os-release(5) asks of readers.
    pub fn parse(text: &str) -> Self {
        let fields = text
            .lines()
            .filter_map(|line| {
                let line = line.trim();
                if line.starts_with('#') {
                    return None;
                }
                let (key, value) = line.split_once('=')?;
                let valid_key =
                    !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                valid_key.then(|| (key.to_string(), unquote(value)))
            })
            .collect();
        Self { fields }
    }

    /// The last value given for `key` (later assignments win, as in a shell).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `VERSION_ID`: the Talos version, e.g. `v1.11.5`.
    pub fn version_id(&self) -> Option<&str> {
        self.get("VERSION_ID")
    }

    pub fn version(&self) -> Option<&str> {
        self.get("VERSION")
    }

    pub fn pretty_name(&self) -> Option<&str> {
        self.get("PRETTY_NAME")
    }
}

/// Removes one level of double or single quotes; inside double quotes (and unquoted)
/// a backslash escapes the next character.
fn unquote(value: &str) -> String {
    let value = value.trim();
    if let Some(inner) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
        return inner.to_string();
    }
    let inner = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_talos_fields_quoted_or_not() {
        let text = "NAME=\"Talos\"\nID=talos\nVERSION_ID=v1.11.5\n# comment\n\
                    PRETTY_NAME=\"Talos (v1.11.5)\"\nVERSION='v1.11.5 \"x\"'\n\
                    HOME_URL=\"https://www.talos.dev/\"\nESC=\"a\\\"b\\\\c\"\nnot a field\n";
        let os = OsRelease::parse(text);
        assert_eq!(os.version_id(), Some("v1.11.5"));
        assert_eq!(os.pretty_name(), Some("Talos (v1.11.5)"));
        assert_eq!(os.version(), Some("v1.11.5 \"x\""));
        assert_eq!(os.get("ESC"), Some("a\"b\\c"));
        assert_eq!(os.get("NAME"), Some("Talos"));
        assert_eq!(os.get("MISSING"), None);
        assert_eq!(os.fields.len(), 7);
    }
}
