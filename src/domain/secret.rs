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

/// A URL with the password of its user info masked (`postgres://octo:****@db/octo`), for
/// logs and `octo config show`. A URL without a password is returned as it is.
pub fn mask_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    // The user info ends at the last '@' before the path.
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    match rest[..at].split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:{MASK}{}", &rest[at..]),
        None => url.to_owned(),
    }
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

    #[test]
    fn urls_keep_everything_but_the_password() {
        assert_eq!(
            mask_url("postgres://octo:s3cr@t:x@db.lan:5432/octo?sslmode=disable"),
            "postgres://octo:****@db.lan:5432/octo?sslmode=disable"
        );
        assert_eq!(
            mask_url("postgres://octo@db/octo"),
            "postgres://octo@db/octo"
        );
        assert_eq!(
            mask_url("sqlite:///var/lib/octo.db"),
            "sqlite:///var/lib/octo.db"
        );
        assert_eq!(mask_url("not a url"), "not a url");
    }
}
