//! Secrets never leave the server: reads show a masked hint instead.

/// The marker every masked value contains; a value containing it is never stored.
pub const MASK: &str = "****";

/// A hint like `sk-a****wxyz`: enough to recognise a key, never enough to use it.
pub fn mask(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() <= 12 {
        return MASK.to_owned();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{MASK}{tail}")
}

/// Whether a value sent by a client is a masked hint (and must not overwrite a secret).
pub fn is_masked(value: &str) -> bool {
    value.contains(MASK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_always_contain_the_marker_and_hide_the_middle() {
        assert_eq!(mask("sk-abcdefghijklmnopwxyz"), "sk-a****wxyz");
        assert_eq!(mask("short"), "****");
        assert_eq!(mask(""), "****");
        assert!(is_masked(&mask("sk-abcdefghijklmnopwxyz")));
        assert!(!is_masked("sk-abcdefghijklmnopwxyz"));
    }
}
