//! The rules a zip entry name must follow before anything is extracted or written under it.

/// Checks that `name` is a plain relative path: no absolute path, drive letter, `..`, `.` or
/// empty component, backslash, NUL or other control character.
pub fn check_entry_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty name");
    }
    if name.contains('\0') {
        return Err("name contains a NUL byte");
    }
    if name == "/" {
        return Err("absolute path");
    }
    if name.chars().any(|c| c.is_control()) {
        return Err("name contains a control character");
    }
    if name.contains('\\') {
        return Err("name contains a backslash (Windows path separators are refused; use '/')");
    }
    if name.starts_with('/') {
        return Err("absolute path");
    }
    let bytes = name.as_bytes();
    if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        return Err("absolute Windows path (drive letter)");
    }
    if name.split('/').any(|part| part == "..") {
        return Err("path traversal: a `..` component");
    }
    // `a/./b` and `a//b` are `a/b` once extracted: one archive, one meaning.
    let inner = name.strip_suffix('/').unwrap_or(name);
    if inner.split('/').any(|part| part.is_empty() || part == ".") {
        return Err("an empty or `.` path component (the same file as a plainer name)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_entry_name;

    #[test]
    fn accepts_ordinary_paths() {
        for ok in [
            "index.html",
            "assets/app.js",
            "dir/",
            "a/b/c.txt",
            "..foo/bar",
            "x..y",
        ] {
            assert!(check_entry_name(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_hostile_paths() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a\\b",
            "C:/x",
            "c:x",
            "a\0b",
            "a\nb",
            "a/..",
            "a//b",
            "a/./b",
            "./a",
            "/",
            "a//",
        ] {
            assert!(check_entry_name(bad).is_err(), "{bad:?}");
        }
    }
}
