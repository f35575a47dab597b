//! Parsing the database URL needs no server. The store's behaviour against a real
//! Postgres is tested from outside the crate: `tests/store.rs` (the conformance suite,
//! shared with SQLite) and `tests/store_postgres.rs` (many concurrent writers on two
//! servers).

use super::*;

#[test]
fn urls_asking_for_tls_or_malformed_are_refused_with_a_clear_error() {
    for url in [
        "postgres://u:secret@db/octo?sslmode=require",
        "postgres://u:secret@db/octo?sslmode=verify-full",
        "postgresql://db/octo?sslmode=verify-ca",
    ] {
        match parse_url(url) {
            Err(Error::Unavailable {
                reason, message, ..
            }) => {
                assert_eq!(reason, crate::domain::reason::POSTGRES_TLS_UNSUPPORTED);
                assert!(message.contains("TLS"), "{message}");
            }
            other => panic!("{url}: expected the TLS error, got {other:?}"),
        }
    }
    match parse_url("postgres://u:secret@db/octo?connect_timeout=soon") {
        Err(err @ Error::InvalidArgument(_)) => {
            assert!(!err.to_string().contains("secret"), "{err}");
        }
        other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
    }
    for url in [
        "postgres://u:secret@db:5433/octo",
        "postgres://db/octo?sslmode=disable",
        "postgres://db/octo?sslmode=prefer",
    ] {
        assert!(parse_url(url).is_ok(), "{url}");
    }
}
