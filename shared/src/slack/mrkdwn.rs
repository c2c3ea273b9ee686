//! Text for Slack's `mrkdwn`: escaping and links.

/// Escapes the three characters Slack gives meaning to, so text from a pipeline (custom data,
/// error messages) cannot ping `<!channel>` or forge links.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A Slack date token for `secs` since the epoch, shown in the reader's time zone
/// ("Yesterday at 14:02"); clients that cannot render it show the number.
pub fn date(secs: i64) -> String {
    format!("<!date^{secs}^{{date_short_pretty}} at {{time}}|{secs}>")
}

/// Longest URL written as a link; a longer one would crowd a text object's 3,000 characters.
const MAX_LINK_URL: usize = 2_000;

/// `<url|label>`, or the escaped label alone when the URL is not http(s), would break the
/// link syntax, or is too long to fit a text object with others.
pub fn link(url: &str, label: &str) -> String {
    let safe = (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() <= MAX_LINK_URL
        && !url.contains(['<', '>', '|', ' ']);
    if safe {
        format!("<{url}|{}>", escape(label).replace('|', "¦"))
    } else {
        escape(label)
    }
}

/// Cuts text to at most `max` characters, marking the cut. The cut never lands inside an
/// escape (`&amp;`) or a link (`<url|label>`): what would be left half is dropped whole, so
/// the result is still valid mrkdwn.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    if let Some(open) = out.rfind('<') {
        if !out[open..].contains('>') {
            out.truncate(open);
        }
    }
    if let Some(amp) = out.rfind('&') {
        let tail = &out[amp..];
        if !tail.contains(';') && tail.len() <= "&amp;".len() {
            out.truncate(amp);
        }
    }
    out.push('…');
    out
}

/// Joins pieces (links, labels) with `separator` into one text of at most `max` characters;
/// a piece that does not fit is left out and counted ("+2 more").
pub fn join_within(pieces: &[String], separator: &str, max: usize) -> String {
    let mut out = String::new();
    let mut left_out = 0;
    for piece in pieces {
        let needed = if out.is_empty() {
            0
        } else {
            separator.chars().count()
        };
        // Room is kept for the "+N more" note.
        if out.chars().count() + needed + piece.chars().count() + 12 <= max {
            if !out.is_empty() {
                out.push_str(separator);
            }
            out.push_str(piece);
        } else {
            left_out += 1;
        }
    }
    if left_out > 0 {
        if !out.is_empty() {
            out.push_str(separator);
        }
        out.push_str(&format!("+{left_out} more"));
    }
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
    fn never_cuts_inside_an_escape_or_a_link() {
        assert_eq!(truncate("abc &amp; def", 7), "abc …");
        assert_eq!(truncate("ab <https://x|label> cd", 10), "ab …");
        assert_eq!(
            link(&format!("https://e.com/{}", "a".repeat(3000)), "site"),
            "site"
        );
        let joined = join_within(&["a".repeat(20), "b".repeat(20)], " · ", 40);
        assert_eq!(joined, format!("{} · +1 more", "a".repeat(20)));
    }

    proptest::proptest! {
        #[test]
        fn truncated_mrkdwn_stays_within_and_well_formed(text in "[a-z &<>|;]{0,80}", max in 1usize..60) {
            let escaped = escape(&text);
            let cut = truncate(&escaped, max);
            proptest::prop_assert!(cut.chars().count() <= max.max(1));
            // Every `&` left starts a whole escape.
            for (i, _) in cut.match_indices('&') {
                let rest = &cut[i..];
                proptest::prop_assert!(rest.starts_with("&amp;") || rest.starts_with("&lt;") || rest.starts_with("&gt;"), "{}", cut);
            }
        }
    }

    #[test]
    fn truncates_on_characters() {
        assert_eq!(truncate("héllo world", 5), "héll…");
        assert_eq!(truncate("short", 10), "short");
    }
}
