//! Resource names: users may type a bare id or the full name (`sessions/{id}`).

use anyhow::bail;

/// The full name `{collection}/{id}` from a bare id or a full name of that collection.
pub fn resource_name(collection: &str, input: &str) -> anyhow::Result<String> {
    let input = input.trim();
    let id = input
        .strip_prefix(collection)
        .and_then(|rest| rest.strip_prefix('/'))
        .unwrap_or(input);
    let singular = collection.strip_suffix('s').unwrap_or(collection);
    if id.is_empty() {
        bail!("missing {singular} id");
    }
    if id.contains('/') || id.chars().any(char::is_whitespace) {
        bail!("invalid {singular} id {input:?}: expected an id or `{collection}/{{id}}`");
    }
    Ok(format!("{collection}/{id}"))
}

/// The id part of a `{collection}/{id}` name; the input itself when it has another form.
pub fn resource_id<'a>(collection: &str, name: &'a str) -> &'a str {
    name.strip_prefix(collection)
        .and_then(|rest| rest.strip_prefix('/'))
        .unwrap_or(name)
}

/// `sessions/{id}` from a bare id or a session name.
pub fn session_name(input: &str) -> anyhow::Result<String> {
    resource_name("sessions", input)
}

/// The id of a session name.
pub fn session_id(name: &str) -> &str {
    resource_id("sessions", name)
}

/// `models/{id}` from a bare id or a model name.
pub fn model_name(input: &str) -> anyhow::Result<String> {
    resource_name("models", input)
}

/// The id of a model name.
pub fn model_id(name: &str) -> &str {
    resource_id("models", name)
}

/// `profiles/{id}` from a bare id or a profile name.
pub fn profile_name(input: &str) -> anyhow::Result<String> {
    resource_name("profiles", input)
}

/// `schedules/{id}` from a bare id or a schedule name.
pub fn schedule_name(input: &str) -> anyhow::Result<String> {
    resource_name("schedules", input)
}

/// The id of a schedule name.
pub fn schedule_id(name: &str) -> &str {
    resource_id("schedules", name)
}

/// The run id (last part) of `schedules/{s}/runs/{r}`; the input itself otherwise.
pub fn run_id(name: &str) -> &str {
    name.rsplit_once("/runs/").map_or(name, |(_, id)| id)
}

/// `sessions/{s}/turns/{t}` from a full turn name, or from a bare turn id and the
/// session it belongs to (an id or a session name).
pub fn turn_name(input: &str, session: Option<&str>) -> anyhow::Result<String> {
    let input = input.trim();
    let session = session.map(session_name).transpose()?;
    if let Some(rest) = input.strip_prefix("sessions/") {
        let Some((owner, turn)) = rest.split_once("/turns/") else {
            bail!("invalid turn name {input:?}: expected `sessions/{{session}}/turns/{{turn}}`");
        };
        let owner = session_name(owner)?;
        if let Some(session) = session
            && session != owner
        {
            bail!("turn {input} is not in {session}");
        }
        return Ok(format!("{owner}/{}", resource_name("turns", turn)?));
    }
    match session {
        Some(session) => Ok(format!("{session}/{}", resource_name("turns", input)?)),
        None => bail!(
            "expected `sessions/{{session}}/turns/{{turn}}`, or a turn id with --session; got {input:?}"
        ),
    }
}

/// The turn id (last part) of `sessions/{s}/turns/{t}`; the input itself otherwise.
pub fn turn_id(name: &str) -> &str {
    name.rsplit_once("/turns/").map_or(name, |(_, id)| id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_ids_and_full_names_normalise_to_names() {
        let id = "0190f5a2-7c1e-7000-8000-000000000001";
        assert_eq!(session_name(id).unwrap(), format!("sessions/{id}"));
        assert_eq!(
            session_name(&format!("sessions/{id}")).unwrap(),
            format!("sessions/{id}")
        );
        assert_eq!(session_name(" abc \n").unwrap(), "sessions/abc");
        // An id that merely starts with the collection's letters is still an id.
        assert_eq!(session_name("sessionsx").unwrap(), "sessions/sessionsx");
        assert_eq!(model_name("gpt").unwrap(), "models/gpt");
    }

    #[test]
    fn bad_ids_are_rejected() {
        for bad in [
            "",
            "  ",
            "sessions/",
            "models/abc",
            "sessions/a/turns/b",
            "a b",
        ] {
            let err = session_name(bad).expect_err(bad);
            assert!(err.to_string().contains("session id"), "{bad}: {err}");
        }
    }

    #[test]
    fn turn_names_come_from_full_names_or_ids_with_a_session() {
        assert_eq!(
            turn_name("sessions/s1/turns/t1", None).unwrap(),
            "sessions/s1/turns/t1"
        );
        assert_eq!(
            turn_name(" sessions/s1/turns/t1 ", Some("s1")).unwrap(),
            "sessions/s1/turns/t1"
        );
        assert_eq!(
            turn_name("t1", Some("sessions/s1")).unwrap(),
            "sessions/s1/turns/t1"
        );
        assert_eq!(
            turn_name("turns/t1", Some("s1")).unwrap(),
            "sessions/s1/turns/t1"
        );
        for (bad, session) in [
            ("t1", None),
            ("sessions/s1", None),
            ("sessions/s1/turns/", None),
            ("sessions//turns/t1", None),
            ("sessions/s1/turns/t1/x", None),
            ("sessions/s1/turns/t1", Some("s2")),
            ("a b", Some("s1")),
            ("", Some("s1")),
        ] {
            assert!(turn_name(bad, session).is_err(), "{bad:?} {session:?}");
        }
        assert_eq!(turn_id("sessions/s1/turns/t1"), "t1");
        assert_eq!(turn_id("t1"), "t1");
    }

    #[test]
    fn ids_come_out_of_names() {
        assert_eq!(session_id("sessions/abc"), "abc");
        assert_eq!(session_id("abc"), "abc");
        assert_eq!(session_id("models/abc"), "models/abc");
        assert_eq!(model_id("models/gpt"), "gpt");
        assert_eq!(schedule_id("schedules/nightly"), "nightly");
        assert_eq!(schedule_name("nightly").unwrap(), "schedules/nightly");
        assert_eq!(run_id("schedules/s/runs/r1"), "r1");
        assert_eq!(run_id("r1"), "r1");
    }
}
