//! Opaque page tokens for keyset pagination (AIP-158). A token carries the sort key of
//! the last item served and a fingerprint of the request's filters, so a token is only
//! valid with the filters it was issued for.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::{Error, Result};

pub const DEFAULT_PAGE_SIZE: usize = 50;
pub const MAX_PAGE_SIZE: usize = 500;

/// The number of items to serve: default 50, at most 500; negative is invalid.
pub fn page_size(requested: i32) -> Result<usize> {
    match requested {
        0 => Ok(DEFAULT_PAGE_SIZE),
        n if n < 0 => Err(Error::invalid("page_size", "must not be negative")),
        n => Ok((n as usize).min(MAX_PAGE_SIZE)),
    }
}

#[derive(Serialize, Deserialize)]
struct Envelope<K> {
    /// The keyset position: the sort key of the last item served.
    k: K,
    /// Fingerprint of the filters.
    f: u64,
}

/// Encodes the position after `key` for a request whose filters hash to `filters`.
pub fn encode_token<K: Serialize>(key: &K, filters: u64) -> String {
    let json = serde_json::to_vec(&Envelope { k: key, f: filters }).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json)
}

/// Decodes a page token; an empty token is the first page.
pub fn decode_token<K: DeserializeOwned>(token: &str, filters: u64) -> Result<Option<K>> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || {
        Error::invalid(
            "page_token",
            "is not a token this server issued for these filters",
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let envelope: Envelope<K> = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if envelope.f != filters {
        return Err(invalid());
    }
    Ok(Some(envelope.k))
}

/// One page of `items`, which are sorted by `key`: those after the token's position, at
/// most `page_size` of them, and the next page's token (empty on the last page). For the
/// small resource lists kept whole in memory (models, profiles, triggers).
pub fn page_of<'a, T, K>(
    items: &'a [T],
    key: impl Fn(&T) -> K,
    page_size: i32,
    page_token: &str,
    filters: u64,
) -> Result<(Vec<&'a T>, String)>
where
    K: Serialize + DeserializeOwned + PartialOrd,
{
    let size = self::page_size(page_size)?;
    let after: Option<K> = decode_token(page_token, filters)?;
    let mut rest = items
        .iter()
        .filter(|item| after.as_ref().is_none_or(|after| &key(item) > after));
    let page: Vec<&T> = rest.by_ref().take(size).collect();
    let next = match (page.last(), rest.next()) {
        (Some(last), Some(_)) => encode_token(&key(last), filters),
        _ => String::new(),
    };
    Ok((page, next))
}

/// A stable 64-bit FNV-1a hash (std's hasher is not stable across releases, and tokens
/// must survive a server upgrade).
pub fn fingerprint(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain(std::iter::once(0xff)) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_of_walks_a_sorted_list_by_token() {
        let items: Vec<u32> = (1..=5).collect();
        let f = fingerprint(&["n"]);
        let (first, token) = page_of(&items, |n| *n, 2, "", f).unwrap();
        assert_eq!(first, [&1, &2]);
        let (second, token) = page_of(&items, |n| *n, 2, &token, f).unwrap();
        assert_eq!(second, [&3, &4]);
        let (last, token) = page_of(&items, |n| *n, 2, &token, f).unwrap();
        assert_eq!((last, token.as_str()), (vec![&5], ""));
        assert!(page_of(&items, |n| *n, 2, &encode_token(&1u32, f + 1), f).is_err());
    }

    #[test]
    fn tokens_round_trip_and_are_bound_to_their_filters() {
        let f = fingerprint(&["query", "x"]);
        let token = encode_token(&(true, 42i64, "id".to_owned()), f);
        let key: Option<(bool, i64, String)> = decode_token(&token, f).expect("decodes");
        assert_eq!(key, Some((true, 42, "id".to_owned())));
        assert!(decode_token::<(bool, i64, String)>(&token, f + 1).is_err());
        assert!(decode_token::<(bool, i64, String)>("garbage!", f).is_err());
        assert_eq!(
            decode_token::<(bool, i64, String)>("", f).expect("empty"),
            None
        );
    }

    #[test]
    fn page_size_defaults_and_clamps() {
        assert_eq!(page_size(0).expect("ok"), DEFAULT_PAGE_SIZE);
        assert_eq!(page_size(10_000).expect("ok"), MAX_PAGE_SIZE);
        assert!(page_size(-1).is_err());
    }
}
