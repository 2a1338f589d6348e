//! Glob patterns, as `SCAN ... MATCH` and `CONFIG GET` take them (Redis's rules, on bytes):
//!
//! | pattern | matches |
//! |---|---|
//! | `*` | any run of bytes, the empty one too |
//! | `?` | any one byte |
//! | `[abc]`, `[a-z]`, `[^a-z]` | one byte in (or, with `^`, not in) the set; a range may be written backwards |
//! | `\c` | the byte `c` itself (so `\*` is a star) |
//! | any other byte | itself |
//!
//! A `[` that is never closed takes the rest of the pattern as its set, as Redis does.
//!
//! [`matches()`] walks the pattern and the text once, remembering the last `*` it passed: on
//! a mismatch it goes back there and lets that star take one more byte. Every element other
//! than `*` matches exactly one byte, so the last star is the only choice worth revisiting,
//! and the work is at most the product of the two lengths (no recursion, no blow-up on
//! patterns like `*a*a*a*b`).

/// True when all of `text` matches `pattern`.
pub fn matches(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // The pattern index after the last star, and the text index that star reached.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() {
            if pattern[p] == b'*' {
                p += 1;
                star = Some((p, t));
                continue;
            }
            if let Some(next) = one_byte(pattern, p, text[t]) {
                p = next;
                t += 1;
                continue;
            }
        }
        match star {
            Some((after_star, reached)) => {
                p = after_star;
                t = reached + 1;
                star = Some((after_star, t));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

/// Whether the element at `pattern[p]` (not a star) matches `byte`: the index after the
/// element when it does.
fn one_byte(pattern: &[u8], p: usize, byte: u8) -> Option<usize> {
    match pattern[p] {
        b'?' => Some(p + 1),
        b'[' => class(pattern, p + 1, byte),
        b'\\' if p + 1 < pattern.len() => (pattern[p + 1] == byte).then_some(p + 2),
        literal => (literal == byte).then_some(p + 1),
    }
}

/// A `[...]` set whose inside starts at `p`: the index after its `]` when `byte` is in it.
fn class(pattern: &[u8], mut p: usize, byte: u8) -> Option<usize> {
    let negated = pattern.get(p) == Some(&b'^');
    if negated {
        p += 1;
    }
    let mut found = false;
    while p < pattern.len() && pattern[p] != b']' {
        if pattern[p] == b'\\' && p + 1 < pattern.len() {
            found |= pattern[p + 1] == byte;
            p += 2;
        } else if p + 2 < pattern.len() && pattern[p + 1] == b'-' {
            let (a, b) = (pattern[p], pattern[p + 2]);
            let (low, high) = if a <= b { (a, b) } else { (b, a) };
            found |= (low..=high).contains(&byte);
            p += 3;
        } else {
            found |= pattern[p] == byte;
            p += 1;
        }
    }
    // Past the `]`, or at the end of an unclosed set.
    let after = (p + 1).min(pattern.len());
    (found != negated).then_some(after)
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn stars_questions_sets_and_escapes() {
        let cases: &[(&str, &str, bool)] = &[
            ("*", "", true),
            ("*", "anything", true),
            ("user:*", "user:42", true),
            ("user:*", "users", false),
            ("h?llo", "hello", true),
            ("h?llo", "hllo", false),
            ("h[ae]llo", "hallo", true),
            ("h[ae]llo", "hillo", false),
            ("h[^e]llo", "hallo", true),
            ("h[^e]llo", "hello", false),
            ("h[a-b]llo", "hbllo", true),
            ("h[b-a]llo", "hbllo", true),
            ("h[a-b]llo", "hcllo", false),
            ("a\\*b", "a*b", true),
            ("a\\*b", "axb", false),
            ("[\\]]", "]", true),
            (
                "*a*a*a*b",
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                false,
            ),
            ("*a*a*a*b", "aaaaaaaaab", true),
            ("a*", "a", true),
            ("a**", "abc", true),
            ("*c", "abc", true),
            ("*c", "abcd", false),
            ("[abc", "b", true),
            ("", "", true),
            ("", "a", false),
            ("abc", "ab", false),
        ];
        for &(pattern, text, expected) in cases {
            assert_eq!(
                matches(pattern.as_bytes(), text.as_bytes()),
                expected,
                "{pattern} ~ {text}"
            );
        }
    }
}
