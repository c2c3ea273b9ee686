//! What a URL may show in messages, summaries and logs: no credentials, no secret-looking
//! query values. The pipeline's console and the function's logs are read by more people than
//! the secrets are meant for.

/// Query parameter names (lower-cased, as substrings) whose values are hidden.
const SECRET_NAMES: &[&str] = &[
    "token",
    "key",
    "secret",
    "password",
    "passwd",
    "pwd",
    "signature",
    "sig",
    "auth",
    "credential",
    "session",
    "code",
];

/// `url` with its user info replaced by `***` and secret-looking query values by `***`.
pub fn url(url: &str) -> String {
    let Ok(mut parsed) = reqwest::Url::parse(url) else {
        return without_userinfo(url);
    };
    let had_userinfo = !parsed.username().is_empty() || parsed.password().is_some();
    let _ = parsed.set_username("");
    let _ = parsed.set_password(None);
    let secret = |name: &str| {
        let name = name.to_lowercase();
        SECRET_NAMES.iter().any(|s| name.contains(s))
    };
    // The query is rewritten only when something in it is hidden, so other URLs read as given.
    if parsed.query_pairs().any(|(k, _)| secret(&k)) {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let shown = if secret(&k) {
                    "***".into()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), shown)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    let text = parsed.to_string();
    if had_userinfo {
        text.replacen("://", "://***@", 1)
    } else {
        text
    }
}

/// For text that does not parse as a URL: anything between `://` and `@` goes.
fn without_userinfo(text: &str) -> String {
    match (text.find("://"), text.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***{}", &text[..scheme], &text[at..])
        }
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::url;

    #[test]
    fn hides_credentials_and_secret_query_values() {
        let shown = url("https://deploy:hunter2@example.com/health?api_key=abc123&region=eu&X-Amz-Signature=f00");
        assert!(
            !shown.contains("hunter2") && !shown.contains("abc123") && !shown.contains("f00"),
            "{shown}"
        );
        assert!(
            shown.contains("region=eu") && shown.contains("example.com/health"),
            "{shown}"
        );
        assert!(shown.starts_with("https://***@example.com"), "{shown}");
    }

    #[test]
    fn leaves_plain_urls_alone() {
        assert_eq!(
            url("https://example.com/health"),
            "https://example.com/health"
        );
    }

    #[test]
    fn hides_credentials_in_text_that_is_not_a_url() {
        assert_eq!(
            super::without_userinfo("http://u:p@[bad"),
            "http://***@[bad"
        );
    }
}
