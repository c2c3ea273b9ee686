//! Slack's `mrkdwn` as HTML, the way the Slack client shows it: `*bold*`, `_italic_`,
//! `~strike~`, `` `code` ``, ```` ```preformatted``` ````, `> quotes`, links `<url|label>`,
//! user, channel, group and date tokens, `:emoji:` names, and the three entities Slack escapes.
//!
//! Everything from the message is HTML-escaped; only the tags written here reach the page.

/// The emoji our messages use, and a few common ones; others stay as `:name:`.
const EMOJI: &[(&str, &str)] = &[
    ("white_check_mark", "✅"),
    ("heavy_check_mark", "✔️"),
    ("x", "❌"),
    ("warning", "⚠️"),
    ("rewind", "⏪"),
    ("fast_forward", "⏩"),
    ("no_entry", "⛔"),
    ("no_entry_sign", "🚫"),
    ("octagonal_sign", "🛑"),
    ("wastebasket", "🗑️"),
    ("hourglass", "⌛"),
    ("hourglass_flowing_sand", "⏳"),
    ("arrows_counterclockwise", "🔄"),
    ("lock", "🔒"),
    ("bust_in_silhouette", "👤"),
    ("busts_in_silhouette", "👥"),
    ("rocket", "🚀"),
    ("mag", "🔍"),
    ("memo", "📝"),
    ("link", "🔗"),
    ("ballot_box_with_check", "☑️"),
    ("clock3", "🕒"),
    ("stopwatch", "⏱️"),
    ("thumbsup", "👍"),
    ("+1", "👍"),
    ("thumbsdown", "👎"),
    ("eyes", "👀"),
    ("tada", "🎉"),
];

/// HTML-escapes `text` for an element's content or a quoted attribute.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Slack's own escapes back to characters (they are escaped again for HTML on the way out).
fn unescape_slack(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Plain text (a `plain_text` object): escaped, emoji names shown, line breaks kept.
pub fn plain(text: &str) -> String {
    emoji(&escape_html(text)).replace('\n', "<br>")
}

/// A `mrkdwn` text object as HTML.
pub fn render(text: &str) -> String {
    let mut out = String::new();
    // Preformatted blocks first: nothing inside them is formatted.
    let mut rest = text;
    while let Some(start) = rest.find("```") {
        let after = &rest[start + 3..];
        let Some(end) = after.find("```") else { break };
        out.push_str(&lines(&rest[..start]));
        out.push_str("<pre>");
        out.push_str(&escape_html(&unescape_slack(
            after[..end].trim_matches('\n'),
        )));
        out.push_str("</pre>");
        rest = &after[end + 3..];
    }
    out.push_str(&lines(rest));
    out
}

/// Line by line, so `> ` quotes become blockquotes.
fn lines(text: &str) -> String {
    let mut out = Vec::new();
    for line in text.split('\n') {
        // Slack quotes a line that starts with `>`, with or without a space after it.
        match line
            .strip_prefix("&gt;")
            .or_else(|| line.strip_prefix('>'))
            .map(|rest| rest.strip_prefix(' ').unwrap_or(rest))
        {
            Some(quoted) => out.push(format!("<blockquote>{}</blockquote>", inline(quoted))),
            None => out.push(inline(line)),
        }
    }
    // A blockquote is a block: no extra break after it.
    let mut html = String::new();
    for (i, line) in out.iter().enumerate() {
        if i > 0 && !out[i - 1].ends_with("</blockquote>") {
            html.push_str("<br>");
        }
        html.push_str(line);
    }
    html
}

/// One line: `<…>` tokens, code spans, then emphasis.
fn inline(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(open) = rest.find('<') {
        let Some(close) = rest[open..].find('>') else {
            break;
        };
        out.push_str(&spans(&unescape_slack(&rest[..open])));
        out.push_str(&token(&rest[open + 1..open + close]));
        rest = &rest[open + close + 1..];
    }
    out.push_str(&spans(&unescape_slack(rest)));
    out
}

/// A `<…>` token: a link, a mention, a special mention or a date.
fn token(inner: &str) -> String {
    let (target, label) = match inner.split_once('|') {
        Some((t, l)) => (t, Some(l)),
        None => (inner, None),
    };
    if let Some(user) = target.strip_prefix('@') {
        return format!(
            "<span class=\"mention\">@{}</span>",
            escape_html(label.unwrap_or(user))
        );
    }
    if let Some(channel) = target.strip_prefix('#') {
        return format!(
            "<span class=\"mention\">#{}</span>",
            escape_html(label.unwrap_or(channel))
        );
    }
    if let Some(group) = target.strip_prefix("!subteam^") {
        return format!(
            "<span class=\"mention\">@{}</span>",
            escape_html(label.unwrap_or(group))
        );
    }
    if let Some(date) = target.strip_prefix("!date^") {
        return date_token(date, label);
    }
    if let Some(special) = target.strip_prefix('!') {
        return format!(
            "<span class=\"mention\">@{}</span>",
            escape_html(label.unwrap_or(special))
        );
    }
    let url = unescape_slack(target);
    let shown = label.map(unescape_slack).unwrap_or_else(|| url.clone());
    if url.starts_with("https://") || url.starts_with("http://") || url.starts_with("mailto:") {
        format!(
            "<a href=\"{}\" target=\"_blank\" rel=\"noopener noreferrer\">{}</a>",
            escape_html(&url),
            escape_html(&shown)
        )
    } else {
        // Not a link Slack would make: shown as the text it is.
        escape_html(&format!("<{}>", unescape_slack(inner)))
    }
}

/// `<!date^1700000000^{date_short_pretty} at {time}|fallback>`: the time in UTC, with the
/// fallback as its title.
fn date_token(date: &str, fallback: Option<&str>) -> String {
    let secs = date.split('^').next().and_then(|s| s.parse::<i64>().ok());
    let shown = secs
        .and_then(|s| {
            aws_smithy_types::DateTime::from_secs(s)
                .fmt(aws_smithy_types::date_time::Format::DateTime)
                .ok()
        })
        .map(|s| s.replace('T', " ").replace('Z', " UTC"))
        .unwrap_or_else(|| fallback.unwrap_or_default().to_string());
    format!(
        "<time title=\"{}\">{}</time>",
        escape_html(fallback.unwrap_or_default()),
        escape_html(&shown)
    )
}

/// Code spans, then bold, italic and strike-through in what is left (raw text).
fn spans(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(open) = rest.find('`') {
        let Some(len) = rest[open + 1..].find('`').filter(|len| *len > 0) else {
            break;
        };
        out.push_str(&emphasis(&rest[..open]));
        out.push_str("<code>");
        out.push_str(&escape_html(&rest[open + 1..open + 1 + len]));
        out.push_str("</code>");
        rest = &rest[open + 1 + len + 1..];
    }
    out.push_str(&emphasis(rest));
    out
}

/// `*bold*`, `_italic_`, `~strike~` in raw text: a marker opens at the start or after a
/// non-alphanumeric character with no space after it, and closes with no space before it and
/// no letter or digit after it.
fn emphasis(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut run = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let tag = match c {
            '*' => Some("strong"),
            '_' => Some("em"),
            '~' => Some("s"),
            _ => None,
        };
        let opens = (i == 0 || !chars[i - 1].is_alphanumeric())
            && chars
                .get(i + 1)
                .is_some_and(|n| !n.is_whitespace() && *n != c);
        if let (Some(tag), true) = (tag, opens) {
            let close = (i + 2..chars.len()).find(|&j| {
                chars[j] == c
                    && !chars[j - 1].is_whitespace()
                    && chars.get(j + 1).is_none_or(|n| !n.is_alphanumeric())
            });
            if let Some(j) = close {
                let inner: String = chars[i + 1..j].iter().collect();
                flush(&mut out, &mut run);
                out.push_str(&format!("<{tag}>{}</{tag}>", emphasis(&inner)));
                i = j + 1;
                continue;
            }
        }
        run.push(c);
        i += 1;
    }
    flush(&mut out, &mut run);
    out
}

/// Plain raw text, escaped for HTML, emoji names shown.
fn flush(out: &mut String, run: &mut String) {
    out.push_str(&emoji(&escape_html(run)));
    run.clear();
}

/// `:name:` → the emoji, for the names in [`EMOJI`].
fn emoji(text: &str) -> String {
    if !text.contains(':') {
        return text.to_string();
    }
    let mut out = String::new();
    let mut rest = text;
    while let Some(open) = rest.find(':') {
        let after = &rest[open + 1..];
        let Some(close) = after.find(':') else { break };
        let name = &after[..close];
        match EMOJI.iter().find(|(n, _)| *n == name) {
            Some((_, glyph)) => {
                out.push_str(&rest[..open]);
                out.push_str(&format!(
                    "<span class=\"emoji\" title=\":{name}:\">{glyph}</span>"
                ));
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[..open + 1]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_slack() {
        assert_eq!(render("*Deploy* failed"), "<strong>Deploy</strong> failed");
        assert_eq!(render("_maybe_ ~no~"), "<em>maybe</em> <s>no</s>");
        assert_eq!(render("run `a*b*c` now"), "run <code>a*b*c</code> now");
        assert_eq!(render("snake_case_name"), "snake_case_name");
        assert_eq!(render("2 * 3 * 4"), "2 * 3 * 4");
        assert_eq!(
            render(":white_check_mark: done"),
            "<span class=\"emoji\" title=\":white_check_mark:\">✅</span> done"
        );
        assert_eq!(render(":not_an_emoji:"), ":not_an_emoji:");
        assert_eq!(render("a\nb"), "a<br>b");
        assert_eq!(
            render("why:\n&gt; because\nok"),
            "why:<br><blockquote>because</blockquote>ok"
        );
        assert_eq!(render("```a *b*\n<c>```"), "<pre>a *b*\n&lt;c&gt;</pre>");
        assert_eq!(
            render("&gt;no space\n&gt;"),
            "<blockquote>no space</blockquote><blockquote></blockquote>"
        );
    }

    #[test]
    fn renders_links_mentions_and_dates() {
        assert_eq!(
            render("<https://example.com/a?b=1&amp;c=2|the page>"),
            "<a href=\"https://example.com/a?b=1&amp;c=2\" target=\"_blank\" rel=\"noopener noreferrer\">the page</a>"
        );
        assert_eq!(
            render("by <@U0LOCAL>"),
            "by <span class=\"mention\">@U0LOCAL</span>"
        );
        assert_eq!(
            render("<!subteam^S0OPS|@ops>"),
            "<span class=\"mention\">@@ops</span>"
        );
        assert_eq!(
            render("<!date^1700000000^{date_short_pretty}|1700000000>"),
            "<time title=\"1700000000\">2023-11-14 22:13:20 UTC</time>"
        );
    }

    #[test]
    fn never_lets_message_text_make_html() {
        assert_eq!(
            render("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "&lt;script&gt;alert(1)&lt;/script&gt;"
        );
        assert_eq!(
            render("<javascript:alert(1)|click>"),
            "&lt;javascript:alert(1)|click&gt;"
        );
        assert_eq!(
            render("<https://x.example/\"onmouseover=\"alert(1)|x>"),
            "<a href=\"https://x.example/&quot;onmouseover=&quot;alert(1)\" target=\"_blank\" rel=\"noopener noreferrer\">x</a>"
        );
        assert_eq!(plain("<b>&</b>"), "&lt;b&gt;&amp;&lt;/b&gt;");
    }

    /// The tags the renderer writes; anything else with `<` would be markup from the message.
    fn strip_own_tags(html: &str) -> String {
        let mut rest = html.to_string();
        for tag in [
            "<strong>",
            "</strong>",
            "<em>",
            "</em>",
            "<s>",
            "</s>",
            "<code>",
            "</code>",
            "<pre>",
            "</pre>",
            "<br>",
            "<blockquote>",
            "</blockquote>",
            "</a>",
            "</span>",
            "</time>",
        ] {
            rest = rest.replace(tag, "");
        }
        // Attribute values are escaped, so a tag of ours ends at the first `>`.
        for prefix in ["<a href=\"", "<span class=\"", "<time title=\""] {
            while let Some(start) = rest.find(prefix) {
                let end = rest[start..].find('>').map(|e| start + e + 1).unwrap();
                rest.replace_range(start..end, "");
            }
        }
        rest
    }

    proptest::proptest! {
        #[test]
        fn message_text_never_becomes_markup(text in "[<>&*_~`:|!@#^ a-z\\n\"']{0,80}") {
            let html = render(&text);
            let rest = strip_own_tags(&html);
            proptest::prop_assert!(!rest.contains('<') && !rest.contains('>'), "{:?} → {}", text, html);
        }
    }
}
