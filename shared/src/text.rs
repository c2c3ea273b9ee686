//! Text cut to an AWS API's length limit.
//!
//! AWS services measure string lengths in UTF-16 code units, as Java does: an emoji is two
//! units, `é` one. Cutting by `char`s lets an emoji-heavy reason or failure message through
//! our check and into a `ValidationException`, after which the result is never recorded. The
//! cut never splits a user-perceived character (a grapheme: a surrogate pair, a flag, a family
//! emoji joined with ZWJ, a letter and its combining accents).

use std::borrow::Cow;
use unicode_segmentation::UnicodeSegmentation;

/// Length of `text` in UTF-16 code units, as AWS counts it.
pub fn utf16_len(text: &str) -> usize {
    text.encode_utf16().count()
}

/// `text` when it is at most `max_units` UTF-16 code units; otherwise its longest prefix of
/// whole graphemes that, followed by `mark`, fits in `max_units`, then `mark`.
pub fn truncate_utf16<'a>(text: &'a str, max_units: usize, mark: &str) -> Cow<'a, str> {
    if utf16_len(text) <= max_units {
        return Cow::Borrowed(text);
    }
    let room = max_units.saturating_sub(utf16_len(mark));
    let mut used = 0;
    let mut end = 0;
    for (at, grapheme) in text.grapheme_indices(true) {
        let units = utf16_len(grapheme);
        if used + units > room {
            break;
        }
        used += units;
        end = at + grapheme.len();
    }
    let mut out = String::with_capacity(end + mark.len());
    out.push_str(&text[..end]);
    out.push_str(mark);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn emoji_count_twice_and_are_never_split() {
        let reason = "😀".repeat(600);
        let cut = truncate_utf16(&reason, 512, "…");
        assert!(utf16_len(&cut) <= 512);
        assert_eq!(cut.chars().filter(|c| *c == '😀').count(), 255);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn flags_families_and_accents_stay_whole() {
        let family = "👨\u{200d}👩\u{200d}👧"; // 8 UTF-16 units, one grapheme
        let text = format!("ab{family}");
        assert_eq!(
            truncate_utf16(&text, 9, ""),
            "ab",
            "the family does not fit whole"
        );
        assert_eq!(truncate_utf16(&text, 10, ""), text);
        let flags = "🇫🇷🇩🇪"; // two flags, four units each
        assert_eq!(truncate_utf16(flags, 6, ""), "🇫🇷");
        let accented = "e\u{301}e\u{301}"; // e + combining acute, twice
        assert_eq!(truncate_utf16(accented, 3, ""), "e\u{301}");
    }

    #[test]
    fn short_text_is_borrowed_unchanged() {
        assert!(matches!(
            truncate_utf16("fine", 4, "…"),
            Cow::Borrowed("fine")
        ));
    }

    proptest! {
        #[test]
        fn the_cut_fits_is_a_prefix_and_ends_on_a_grapheme_boundary(
            text in "(\\PC|[\u{1F1E6}-\u{1F1FF}\u{200d}\u{301}\u{1F3FB}])*",
            max in 0usize..64,
        ) {
            let cut = truncate_utf16(&text, max, "…");
            if utf16_len(&text) <= max {
                prop_assert_eq!(cut.as_ref(), text.as_str());
            } else {
                prop_assert!(utf16_len(&cut) <= max.max(1));
                let kept = cut.strip_suffix('…').unwrap_or(&cut);
                prop_assert!(text.starts_with(kept));
                let boundaries: Vec<usize> = text.grapheme_indices(true).map(|(i, _)| i).collect();
                prop_assert!(kept.is_empty() || boundaries.contains(&kept.len()) || kept.len() == text.len());
            }
        }
    }
}
