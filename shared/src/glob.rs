//! Shell-style globs, as `globset` reads them with `literal_separator` and backslash escapes,
//! without a regex engine in every binary: `?` and `*` stay within one folder, `**` crosses
//! folders (`**/x`, `x/**`, `a/**/b`, or `**` alone), `[ab]`, `[a-z]`, `[!a]` and `[^a]` are
//! classes, `{a,b}` alternatives, `\*` a literal `*`.
//!
//! Matching is a table over (pattern position, text position): linear in the product of their
//! lengths, never exponential, whatever the pattern.

use std::fmt;

/// Alternatives a pattern may expand to (`{a,b}{c,d}` is four).
const MAX_ALTERNATIVES: usize = 256;

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Char(char),
    /// `?`: one character, not `/`.
    One,
    /// `*`: any run of characters without `/`.
    Star,
    /// Any run of characters, `/` included.
    Any,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// Why a pattern is not a glob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobError {
    /// The pattern as written.
    pub pattern: String,
    /// What is wrong with it ("unclosed character class", …).
    pub reason: &'static str,
}

impl fmt::Display for GlobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} in {:?}", self.reason, self.pattern)
    }
}

impl std::error::Error for GlobError {}

/// A compiled glob.
#[derive(Clone, Debug)]
pub struct Glob {
    pattern: String,
    /// The pattern with its `{…}` groups and `**` forms expanded: it matches when one does.
    sequences: Vec<Vec<Token>>,
}

impl Glob {
    /// Compiles `pattern`, or says why it is not a glob.
    pub fn new(pattern: &str) -> Result<Self, GlobError> {
        let error = |reason| GlobError {
            pattern: pattern.to_string(),
            reason,
        };
        // `**/**/x` is `**/x`, as globset reads it.
        let mut body = pattern;
        while let Some(rest) = body.strip_prefix("**/").filter(|r| r.starts_with("**/")) {
            body = rest;
        }
        let chars: Vec<char> = body.chars().collect();
        let mut sequences = vec![Vec::new()];
        if body == "**/" {
            // As globset reads it: everything (there is nothing after the folders).
            sequences = vec![vec![Token::Any]];
        } else {
            parse(&chars, 0, false, &mut sequences).map_err(error)?;
        }
        Ok(Self {
            pattern: pattern.to_string(),
            sequences,
        })
    }

    /// The pattern as written.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// Whether the whole of `text` matches.
    pub fn is_match(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        self.sequences.iter().any(|tokens| matches(tokens, &text))
    }
}

/// Appends `token` to every sequence.
fn push(sequences: &mut [Vec<Token>], token: Token) {
    for sequence in sequences {
        sequence.push(token.clone());
    }
}

/// Multiplies `sequences` by `alternatives` (each followed by the rest of the pattern).
fn product(
    sequences: &[Vec<Token>],
    alternatives: &[Vec<Token>],
) -> Result<Vec<Vec<Token>>, &'static str> {
    if sequences.len() * alternatives.len() > MAX_ALTERNATIVES {
        return Err("too many alternatives");
    }
    Ok(sequences
        .iter()
        .flat_map(|s| {
            alternatives.iter().map(move |a| {
                let mut joined = s.clone();
                joined.extend(a.iter().cloned());
                joined
            })
        })
        .collect())
}

/// Parses `chars[start..]` into `sequences`; inside `{…}` (`in_group`) it stops at the `,`
/// or `}` that ends the alternative and returns its position.
fn parse(
    chars: &[char],
    start: usize,
    in_group: bool,
    sequences: &mut Vec<Vec<Token>>,
) -> Result<usize, &'static str> {
    let mut i = start;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ',' | '}' if in_group => return Ok(i),
            '\\' => {
                let escaped = *chars.get(i + 1).ok_or("dangling escape")?;
                push(sequences, Token::Char(escaped));
                i += 2;
            }
            '?' => {
                push(sequences, Token::One);
                i += 1;
            }
            '*' if chars.get(i + 1) == Some(&'*') => {
                let at_start = i == 0 || chars[i - 1] == '/';
                let next = chars.get(i + 2);
                let whole = at_start && matches!(next, None | Some('/'));
                if !whole {
                    // Not a whole path component: as `*`.
                    push(sequences, Token::Star);
                    i += 2;
                    continue;
                }
                if next == Some(&'/') {
                    // `**/`: nothing, or any folders.
                    let alternatives = vec![Vec::new(), vec![Token::Any, Token::Char('/')]];
                    *sequences = product(sequences, &alternatives)?;
                    i += 3;
                } else {
                    push(sequences, Token::Any);
                    i += 2;
                }
            }
            '*' => {
                push(sequences, Token::Star);
                i += 1;
            }
            '[' => {
                let (token, end) = class(chars, i)?;
                push(sequences, token);
                i = end;
            }
            '{' => {
                if in_group {
                    return Err("nested alternatives are not allowed");
                }
                let mut alternatives = Vec::new();
                let mut at = i + 1;
                loop {
                    let mut alternative = vec![Vec::new()];
                    at = parse(chars, at, true, &mut alternative)?;
                    alternatives.extend(alternative);
                    match chars.get(at) {
                        Some(',') => at += 1,
                        Some('}') => break,
                        _ => return Err("unclosed alternatives"),
                    }
                }
                *sequences = product(sequences, &alternatives)?;
                i = at + 1;
            }
            c => {
                push(sequences, Token::Char(c));
                i += 1;
            }
        }
    }
    if in_group {
        return Err("unclosed alternatives");
    }
    Ok(i)
}

/// A `[…]` class starting at `chars[open]`; the token and the position after it.
fn class(chars: &[char], open: usize) -> Result<(Token, usize), &'static str> {
    let mut i = open + 1;
    let negated = matches!(chars.get(i), Some('!' | '^'));
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    let first = i;
    loop {
        let c = *chars.get(i).ok_or("unclosed character class")?;
        if c == ']' && i > first {
            return Ok((Token::Class { negated, ranges }, i + 1));
        }
        if chars.get(i + 1) == Some(&'-') && chars.get(i + 2).is_some_and(|e| *e != ']') {
            let end = chars[i + 2];
            if end < c {
                return Err("invalid range in a character class");
            }
            ranges.push((c, end));
            i += 3;
        } else {
            ranges.push((c, c));
            i += 1;
        }
    }
}

fn single(token: &Token, c: char) -> bool {
    match token {
        Token::Char(expected) => *expected == c,
        Token::One => c != '/',
        // As in globset, a class may match `/` (a negated one does unless it lists it).
        Token::Class { negated, ranges } => {
            ranges.iter().any(|(a, b)| (*a..=*b).contains(&c)) != *negated
        }
        Token::Star | Token::Any => false,
    }
}

/// Whether `tokens` match all of `text`: `ok[i][j]` is whether `tokens[i..]` match `text[j..]`,
/// filled from the end.
fn matches(tokens: &[Token], text: &[char]) -> bool {
    let width = text.len() + 1;
    let mut ok = vec![false; (tokens.len() + 1) * width];
    ok[tokens.len() * width + text.len()] = true;
    for i in (0..tokens.len()).rev() {
        for j in (0..=text.len()).rev() {
            let here = i * width + j;
            let next = (i + 1) * width + j;
            ok[here] = match &tokens[i] {
                Token::Star => ok[next] || (j < text.len() && text[j] != '/' && ok[here + 1]),
                Token::Any => ok[next] || (j < text.len() && ok[here + 1]),
                token => j < text.len() && single(token, text[j]) && ok[next + 1],
            };
        }
    }
    ok[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(pattern: &str) -> Glob {
        Glob::new(pattern).unwrap()
    }

    #[test]
    fn star_stays_in_one_folder_and_double_star_crosses() {
        assert!(glob("*.html").is_match("index.html"));
        assert!(!glob("*.html").is_match("docs/index.html"));
        assert!(glob("**/*.map").is_match("app.js.map"));
        assert!(glob("**/*.map").is_match("assets/js/app.js.map"));
        assert!(glob("assets/**").is_match("assets/a/b.css"));
        assert!(!glob("assets/**").is_match("assets"));
        assert!(glob("a/**/b").is_match("a/b") && glob("a/**/b").is_match("a/x/y/b"));
        assert!(glob("**").is_match("any/thing/at/all"));
        assert!(glob("?.txt").is_match("a.txt") && !glob("?.txt").is_match("/.txt"));
    }

    #[test]
    fn classes_alternatives_and_escapes() {
        assert!(glob("*.{js,css}").is_match("a.css") && !glob("*.{js,css}").is_match("a.html"));
        assert!(glob("img-[0-9].png").is_match("img-7.png"));
        assert!(!glob("img-[!0-9].png").is_match("img-7.png"));
        assert!(glob("[]]").is_match("]"));
        assert!(glob("\\*").is_match("*") && !glob("\\*").is_match("a"));
        assert!(glob("prod-*").is_match("prod-web") && !glob("prod-*").is_match("preprod-web"));
    }

    #[test]
    fn refuses_what_is_not_a_glob() {
        for bad in ["a[", "{a,b", "a\\", "[z-a]", "{a,{b}}"] {
            let err = Glob::new(bad).unwrap_err();
            assert_eq!(err.pattern, bad);
        }
        let many = "{a,b}".repeat(9);
        assert_eq!(
            Glob::new(&many).unwrap_err().reason,
            "too many alternatives"
        );
    }

    #[test]
    fn a_hostile_pattern_takes_no_time() {
        let pattern = "*a".repeat(50) + "b";
        let text = "a".repeat(5_000);
        assert!(!glob(&pattern).is_match(&text));
    }

    fn piece() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            "[ab.]".prop_map(String::from),
            Just("/".to_string()),
            Just("*".to_string()),
            Just("?".to_string()),
            Just("[ab]".to_string()),
            Just("[!a]".to_string()),
            Just("{a,b.}".to_string()),
            Just("\\*".to_string()),
        ]
    }

    proptest::proptest! {
        /// The same answers as globset (with `literal_separator` and backslash escapes), the
        /// matcher this one replaces, on patterns and paths made of the interesting parts.
        #[test]
        fn agrees_with_globset(
            prefix in proptest::bool::ANY,
            pieces in proptest::collection::vec(piece(), 0..8),
            suffix in proptest::bool::ANY,
            text in "[ab./*]{0,12}",
        ) {
            let mut pattern = String::new();
            if prefix { pattern.push_str("**/"); }
            pattern.push_str(&pieces.concat());
            if suffix { pattern.push_str("/**"); }
            let ours = Glob::new(&pattern);
            let theirs = globset::GlobBuilder::new(&pattern)
                .literal_separator(true)
                .backslash_escape(true)
                .build();
            match (ours, theirs) {
                (Ok(ours), Ok(theirs)) => {
                    let reference = theirs.compile_matcher().is_match(&text);
                    proptest::prop_assert_eq!(ours.is_match(&text), reference, "pattern {:?} text {:?}", pattern, text);
                }
                (Err(_), Err(_)) => {}
                (ours, theirs) => proptest::prop_assert!(false, "{:?}: ours {:?}, globset {:?}", pattern, ours.err(), theirs.err()),
            }
        }
    }
}
