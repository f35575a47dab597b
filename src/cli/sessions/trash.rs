//! `octo sessions rm|restore|purge`: the trash. `rm` moves a session to the trash
//! (DeleteSession) and says when it goes for good; `restore` brings it back
//! (UndeleteSession); `purge` deletes one in the trash for good at once (PurgeSession).
//! `sessions list --deleted` shows the trash beside the other sessions.

use std::io::Write;

use super::view::title_or_untitled;
use crate::{
    cli::{
        client::Client,
        names::{session_id, session_name},
        output::{self, rfc3339},
    },
    pb,
};

/// `sessions rm`: to the trash.
pub async fn remove(
    client: &Client,
    id: &str,
    allow_missing: bool,
    json: bool,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let name = session_name(id)?;
    let trashed = client
        .sessions()
        .delete_session(pb::DeleteSessionRequest {
            name: name.clone(),
            allow_missing,
            ..Default::default()
        })
        .await?
        .into_inner();
    if json {
        return output::write_json(out, &trashed);
    }
    let id = session_id(&name);
    if trashed.name.is_empty() {
        // allow_missing, and there was none.
        writeln!(out, "No session {id}; nothing to delete")?;
        return Ok(());
    }
    writeln!(out, "{}", moved_to_trash(&trashed))?;
    Ok(())
}

/// What `rm` says about a session it moved to the trash.
fn moved_to_trash(session: &pb::Session) -> String {
    let id = session_id(&session.name);
    let until = session
        .expire_time
        .as_ref()
        .map(|t| format!(" until {}", rfc3339(t)))
        .unwrap_or_default();
    format!(
        "Moved session {id} ({}) to the trash{until}, when it is deleted for good.\n\
         Restore it with `octo sessions restore {id}`, or delete it now with `octo sessions purge {id}`.",
        title_or_untitled(session)
    )
}

/// `sessions restore`: out of the trash.
pub async fn restore(
    client: &Client,
    id: &str,
    json: bool,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let name = session_name(id)?;
    let restored = client
        .sessions()
        .undelete_session(pb::UndeleteSessionRequest { name })
        .await?
        .into_inner();
    if json {
        return output::write_json(out, &restored);
    }
    writeln!(
        out,
        "Restored session {} ({}) from the trash",
        session_id(&restored.name),
        title_or_untitled(&restored)
    )?;
    Ok(())
}

/// `sessions purge`: a session in the trash, for good.
pub async fn purge(
    client: &Client,
    id: &str,
    json: bool,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let name = session_name(id)?;
    client
        .sessions()
        .purge_session(pb::PurgeSessionRequest {
            name: name.clone(),
            ..Default::default()
        })
        .await?;
    if json {
        // PurgeSession returns google.protobuf.Empty, whose canonical JSON is `{}`.
        writeln!(out, "{{}}")?;
        return Ok(());
    }
    writeln!(
        out,
        "Deleted session {} for good, with its history",
        session_id(&name)
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rm_says_where_the_session_went_and_how_to_get_it_back() {
        let text = moved_to_trash(&pb::Session {
            name: "sessions/abc".into(),
            display_name: "old work".into(),
            expire_time: Some(prost_types::Timestamp {
                seconds: 1_600_000_000,
                nanos: 0,
            }),
            ..Default::default()
        });
        assert!(
            text.starts_with(
                "Moved session abc (old work) to the trash until 2020-09-13T12:26:40Z"
            ),
            "{text}"
        );
        assert!(text.contains("octo sessions restore abc"), "{text}");
        assert!(text.contains("octo sessions purge abc"), "{text}");
    }
}
