//! Text for Slack's `mrkdwn`: escaping and links.

/// Escapes the three characters Slack gives meaning to, so text from a pipeline (custom data,
/// error messages) cannot ping `<!channel>` or forge links.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `<url|label>`, or the escaped label alone when the URL is not http(s) or would break the
/// link syntax.
pub fn link(url: &str, label: &str) -> String {
    let safe = (url.starts_with("https://") || url.starts_with("http://"))
        && !url.contains(['<', '>', '|', ' ']);
    if safe {
        format!("<{url}|{}>", escape(label).replace('|', "¦"))
    } else {
        escape(label)
    }
}

/// Cuts text to at most `max` characters, marking the cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_slack_would_interpret() {
        assert_eq!(
            escape("<!channel> & <https://x|y>"),
            "&lt;!channel&gt; &amp; &lt;https://x|y&gt;"
        );
    }

    #[test]
    fn links_only_http_urls() {
        assert_eq!(
            link("https://console.aws.amazon.com/x", "console"),
            "<https://console.aws.amazon.com/x|console>"
        );
        assert_eq!(link("javascript:alert(1)", "click"), "click");
        assert_eq!(link("https://a/b>c", "x"), "x");
    }

    #[test]
    fn truncates_on_characters() {
        assert_eq!(truncate("héllo world", 5), "héll…");
        assert_eq!(truncate("short", 10), "short");
    }
}
