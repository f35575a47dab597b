//! How sessions look on a terminal: the `sessions list` table and the key/value block
//! of `sessions show` (and of other commands printing a session).

use std::io::Write;

use crate::{
    cli::{
        names::session_id,
        output::{self, Column, Table, enum_label, fit, long_time, now_unix, write_fields},
    },
    pb,
};

/// The `sessions list` table, `width` columns wide at most where it can be (a
/// terminal's width; None: no limit, e.g. piped). Pinned sessions' titles start with
/// `*`; the title column gives way first (down to 12 characters), so on an 80-column
/// terminal a line fits: 36 (id) + 2 + 15 + 2 + 7 + 2 + 4 + 2 + 10 (active).
pub fn session_table(sessions: &[pb::Session], now: i64, width: Option<usize>) -> Table {
    let rows: Vec<[String; 5]> = sessions
        .iter()
        .map(|session| {
            let title = if session.display_name.is_empty() {
                "(untitled)".to_owned()
            } else {
                session.display_name.clone()
            };
            [
                session_id(&session.name).to_owned(),
                if session.pinned {
                    format!("* {title}")
                } else {
                    title
                },
                short_status(session),
                session.message_count.to_string(),
                active_time(
                    session
                        .last_active_time
                        .as_ref()
                        .or(session.update_time.as_ref()),
                    now,
                ),
            ]
        })
        .collect();
    let headers = ["ID", "TITLE", "STATUS", "MSGS", "ACTIVE"];
    let widest = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([headers[i].len()])
            .max()
            .unwrap_or(0)
    };
    // What the other columns and the 2-space gaps take; the title gets the rest.
    let others: usize = [0, 2, 3, 4].iter().map(|&i| widest(i)).sum::<usize>() + 2 * 4;
    let title_width = width
        .map(|w| w.saturating_sub(others).clamp(12, TITLE_WIDTH))
        .unwrap_or(TITLE_WIDTH);
    let mut table = Table::new([
        Column::left(headers[0]),
        Column::left(headers[1]).max_width(title_width),
        Column::left(headers[2]),
        Column::right(headers[3]),
        Column::left(headers[4]),
    ]);
    for row in rows {
        table.push_row(row);
    }
    table
}

/// The widest a title is shown in the list.
const TITLE_WIDTH: usize = 40;

/// A session's status in at most 7 characters; `trash` for one in the trash.
fn short_status(session: &pb::Session) -> String {
    if session.delete_time.is_some() {
        return "trash".to_owned();
    }
    match pb::SessionStatus::try_from(session.status) {
        Ok(pb::SessionStatus::AwaitingConfirmation) => "waiting".to_owned(),
        Ok(pb::SessionStatus::AwaitingInput) => "asking".to_owned(),
        _ => status_label(session.status),
    }
}

/// Relative while recent ("2m ago"), else the date (10 characters, not 25).
fn active_time(time: Option<&prost_types::Timestamp>, now: i64) -> String {
    match time {
        None => "-".to_owned(),
        Some(time) => output::relative(time, now)
            .unwrap_or_else(|| output::rfc3339(time).chars().take(10).collect()),
    }
}

/// The terminal's width when stdout is one (`COLUMNS` wins when set).
pub(super) fn terminal_width() -> Option<usize> {
    if !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        return None;
    }
    if let Some(columns) = std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()) {
        return Some(columns);
    }
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes the winsize struct we pass, nothing else.
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    (ok && size.ws_col > 0).then_some(usize::from(size.ws_col))
}

/// A session as canonical JSON, or as a key/value block.
pub fn print_session(
    out: &mut (dyn Write + Send),
    json: bool,
    session: &pb::Session,
) -> anyhow::Result<()> {
    if json {
        return output::write_json(out, session);
    }
    write_fields(out, &session_fields(session, now_unix()))?;
    Ok(())
}

/// The rows of a session's key/value block; empty values are left out when printed.
pub fn session_fields(session: &pb::Session, now: i64) -> Vec<(&'static str, String)> {
    let or_default = |value: &str| {
        if value.is_empty() {
            "(server default)".to_owned()
        } else {
            value.to_owned()
        }
    };
    let mut labels: Vec<_> = session
        .labels
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    labels.sort();
    let usage = session
        .usage
        .as_ref()
        .filter(|u| u.input_tokens != 0 || u.output_tokens != 0)
        .map(|u| {
            format!(
                "{} in / {} out tokens ({} reasoning, {} cached)",
                u.input_tokens, u.output_tokens, u.reasoning_tokens, u.cached_input_tokens
            )
        })
        .unwrap_or_default();
    vec![
        ("ID", session_id(&session.name).to_owned()),
        ("Name", session.name.clone()),
        ("Title", title_or_untitled(session)),
        ("Status", status_label(session.status)),
        ("Model", or_default(&session.model)),
        (
            "Reasoning",
            match pb::ReasoningEffort::try_from(session.reasoning_effort) {
                Ok(pb::ReasoningEffort::Unspecified) => "(model default)".to_owned(),
                Ok(effort) => enum_label(effort.as_str_name(), "REASONING_EFFORT_"),
                Err(_) => format!("unknown ({})", session.reasoning_effort),
            },
        ),
        (
            "Permission mode",
            match pb::PermissionMode::try_from(session.permission_mode) {
                Ok(pb::PermissionMode::Unspecified) => "(server default)".to_owned(),
                Ok(mode) => enum_label(mode.as_str_name(), "PERMISSION_MODE_"),
                Err(_) => format!("unknown ({})", session.permission_mode),
            },
        ),
        ("Working dir", session.working_dir.clone()),
        (
            "Source",
            match pb::SessionSource::try_from(session.source) {
                Ok(pb::SessionSource::Unspecified) => String::new(),
                Ok(source) => enum_label(source.as_str_name(), "SESSION_SOURCE_"),
                Err(_) => format!("unknown ({})", session.source),
            },
        ),
        (
            "Pinned",
            if session.pinned { "yes" } else { "no" }.to_owned(),
        ),
        ("Labels", labels.join(", ")),
        ("Messages", session.message_count.to_string()),
        (
            "Queued turns",
            if session.queue_depth > 0 {
                session.queue_depth.to_string()
            } else {
                String::new()
            },
        ),
        ("Active turn", session.active_turn.clone()),
        ("Profile", session.profile.clone()),
        ("Forked from", session.forked_from.clone()),
        ("Usage", usage),
        ("Created", long_time(session.create_time.as_ref(), now)),
        ("Updated", long_time(session.update_time.as_ref(), now)),
        (
            "Last active",
            long_time(session.last_active_time.as_ref(), now),
        ),
        ("Last message", fit(&session.last_message_preview, Some(80))),
        (
            "In the trash since",
            long_time(session.delete_time.as_ref(), now),
        ),
        (
            "Purged for good at",
            long_time(session.expire_time.as_ref(), now),
        ),
        ("System prompt", fit(&session.system_prompt, Some(80))),
    ]
}

pub(super) fn title_or_untitled(session: &pb::Session) -> String {
    if session.display_name.is_empty() {
        "(untitled)".to_owned()
    } else {
        session.display_name.clone()
    }
}

fn status_label(status: i32) -> String {
    match pb::SessionStatus::try_from(status) {
        Ok(pb::SessionStatus::Unspecified) => "-".to_owned(),
        Ok(status) => enum_label(status.as_str_name(), "SESSION_STATUS_"),
        Err(_) => format!("unknown({status})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_shows_ids_titles_and_statuses() {
        let now = 1_700_000_000;
        let sessions = vec![
            pb::Session {
                name: "sessions/0001".into(),
                display_name: "A very long title that goes on and on and on forever".into(),
                status: pb::SessionStatus::AwaitingConfirmation as i32,
                message_count: 12,
                pinned: true,
                last_active_time: Some(prost_types::Timestamp {
                    seconds: now - 120,
                    nanos: 0,
                }),
                ..Default::default()
            },
            pb::Session {
                name: "sessions/0002".into(),
                status: pb::SessionStatus::Idle as i32,
                ..Default::default()
            },
        ];
        let render = |width| {
            let mut buf = Vec::new();
            session_table(&sessions, now, width)
                .render(&mut buf)
                .expect("render");
            String::from_utf8(buf).expect("utf8")
        };
        let text = render(None);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("ID    TITLE"), "{text}");
        assert!(
            lines[1].starts_with(
                "0001  * A very long title that goes on and on…  waiting    12  2m ago"
            ),
            "{text}"
        );
        assert!(lines[2].starts_with("0002  (untitled)"), "{text}");
        assert!(lines[2].ends_with("-"), "{text}");
        // Every column starts at the same offset on every line.
        let status_at = lines[0].find("STATUS").expect("STATUS");
        assert_eq!(&lines[2][status_at..status_at + 4], "idle");

        // Real ids are 36 characters: on an 80-column terminal every line fits.
        let sessions: Vec<pb::Session> = sessions
            .into_iter()
            .map(|s| pb::Session {
                name: format!(
                    "sessions/01a2375c-11e6-707f-b288-96f9736ef24{}",
                    &s.name[12..]
                ),
                last_active_time: Some(prost_types::Timestamp {
                    seconds: 1_600_000_000,
                    nanos: 0,
                }),
                ..s
            })
            .collect();
        let mut buf = Vec::new();
        session_table(&sessions, now, Some(80))
            .render(&mut buf)
            .expect("render");
        let text = String::from_utf8(buf).expect("utf8");
        for line in text.lines() {
            assert!(
                line.chars().count() <= 80,
                "{} > 80: {line}",
                line.chars().count()
            );
        }
        assert!(text.contains("2020-09-13"), "old times are dates: {text}");
    }

    #[test]
    fn key_value_block_shows_settings() {
        let session = pb::Session {
            name: "sessions/abc".into(),
            display_name: "T".into(),
            permission_mode: pb::PermissionMode::ReadOnly as i32,
            labels: [("b".into(), "2".into()), ("a".into(), "1".into())].into(),
            ..Default::default()
        };
        let fields = session_fields(&session, 0);
        let trashed = session_fields(
            &pb::Session {
                delete_time: Some(prost_types::Timestamp {
                    seconds: 1_600_000_000,
                    nanos: 0,
                }),
                ..session.clone()
            },
            0,
        );
        assert!(
            trashed
                .iter()
                .any(|(k, v)| *k == "In the trash since" && v.starts_with("2020-09-13")),
            "{trashed:?}"
        );
        let get = |key| {
            fields
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("ID"), Some("abc"));
        assert_eq!(get("Permission mode"), Some("read-only"));
        assert_eq!(get("Labels"), Some("a=1, b=2"));
        assert_eq!(get("Model"), Some("(server default)"));
    }

    #[test]
    fn sessions_in_the_trash_show_as_such() {
        let sessions = [pb::Session {
            name: "sessions/0003".into(),
            display_name: "old".into(),
            status: pb::SessionStatus::Idle as i32,
            delete_time: Some(prost_types::Timestamp {
                seconds: 1,
                nanos: 0,
            }),
            ..Default::default()
        }];
        let mut buf = Vec::new();
        session_table(&sessions, 100, None)
            .render(&mut buf)
            .expect("render");
        let text = String::from_utf8(buf).expect("utf8");
        let row = text.lines().nth(1).expect("row");
        assert!(row.contains("old") && row.contains("trash"), "{text}");
    }
}
