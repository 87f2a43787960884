//! Refuses passwords that are common or trivially guessable (NIST SP 800-63B-4 §3.1.1.2: compare
//! new passwords against a blocklist). The list ships with the project; nothing is fetched.

use std::{collections::HashSet, sync::LazyLock};

/// Parsed once, on first use: constant data, not state.
static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("common-passwords.txt")
        .lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect()
});

/// Runs of keys or symbols that people type as "long" passwords.
const SEQUENCES: &[&str] = &[
    "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz",
    "qwertyuiopasdfghjklzxcvbnmqwertyuiopasdfghjklzxcvbnm",
    "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p",
    "q1w2e3r4t5y6u7i8o9p0q1w2e3r4t5y6u7i8o9p0",
    "0123456789012345678901234567890123456789",
];

/// True for a password that is on the list, two list entries joined, a repeated pattern
/// ("abcabcabc…", "123456789012345"), or a run of the keyboard or alphabet. Case-insensitive.
pub fn is_common(password: &str) -> bool {
    let lower = password.to_lowercase();
    if COMMON.contains(lower.as_str()) || is_periodic(&lower) || is_sequence(&lower) {
        return true;
    }
    lower
        .char_indices()
        .skip(1)
        .any(|(at, _)| COMMON.contains(&lower[..at]) && COMMON.contains(&lower[at..]))
}

/// Whether the text repeats a unit at most two thirds of its length long.
fn is_periodic(text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    (1..=chars.len() * 2 / 3)
        .any(|period| (period..chars.len()).all(|i| chars[i] == chars[i - period]))
}

fn is_sequence(text: &str) -> bool {
    SEQUENCES.iter().any(|run| {
        let reversed: String = run.chars().rev().collect();
        run.contains(text) || reversed.contains(text)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_common_and_patterned_passwords() {
        for weak in [
            "1qaz2wsx3edc4rfv",
            "passwordpassword",
            "PasswordPassword",
            "iloveyouiloveyou",
            "footballbaseball",
            "123456789012345",
            "aaaaaaaaaaaaaaaaaaaa",
            "abcabcabcabcabcab",
            "qwertyuiopasdfgh",
            "zyxwvutsrqponmlk",
            "543210987654321",
        ] {
            assert!(is_common(weak), "{weak} should be refused");
        }
    }

    #[test]
    fn accepts_ordinary_passphrases() {
        for fine in [
            "correct horse battery staple",
            "my cat eats pancakes on tuesdays",
            "Zebra-Lantern-Quartz-91",
            "日本語のパスワードです、はい!",
        ] {
            assert!(!is_common(fine), "{fine} should be accepted");
        }
    }
}
