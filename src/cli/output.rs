//! Everything the CLI prints: proto3 canonical JSON of any response message (one generic
//! helper over prost-reflect), aligned tables, key/value blocks, times and enum labels.

use std::{
    io::Write,
    sync::LazyLock,
    time::{SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, anyhow};
use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};

use crate::pb;

static POOL: LazyLock<Result<DescriptorPool, String>> = LazyLock::new(|| {
    DescriptorPool::decode(pb::FILE_DESCRIPTOR_SET).map_err(|err| err.to_string())
});

/// The descriptors of every Octo proto, decoded once.
pub fn descriptor_pool() -> anyhow::Result<&'static DescriptorPool> {
    POOL.as_ref()
        .map_err(|err| anyhow!("cannot decode the built-in descriptor set: {err}"))
}

/// `message` as a prost-reflect dynamic message, via its encoded bytes.
pub fn to_dynamic<M: prost::Name>(message: &M) -> anyhow::Result<DynamicMessage> {
    let name = M::full_name();
    let descriptor = descriptor_pool()?
        .get_message_by_name(&name)
        .ok_or_else(|| anyhow!("message {name} is not in the descriptor set"))?;
    DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())
        .with_context(|| format!("cannot re-decode {name}"))
}

/// Serialises `message` as proto3 canonical JSON (lowerCamelCase names, enum names,
/// 64-bit integers as strings, default values omitted), pretty or on one line.
fn write_canonical<M: prost::Name>(
    out: &mut dyn Write,
    message: &M,
    pretty: bool,
) -> anyhow::Result<()> {
    let dynamic = to_dynamic(message)?;
    let options = SerializeOptions::new();
    if pretty {
        let mut serializer = serde_json::Serializer::pretty(&mut *out);
        dynamic.serialize_with_options(&mut serializer, &options)?;
    } else {
        let mut serializer = serde_json::Serializer::new(&mut *out);
        dynamic.serialize_with_options(&mut serializer, &options)?;
    }
    writeln!(out)?;
    Ok(())
}

/// Writes `message` as pretty proto3 canonical JSON followed by a newline: the `--json`
/// output of every command.
pub fn write_json<M: prost::Name>(out: &mut dyn Write, message: &M) -> anyhow::Result<()> {
    write_canonical(out, message, true)
}

/// Writes `message` as canonical JSON on one line (for streams: one message per line).
pub fn write_json_line<M: prost::Name>(out: &mut dyn Write, message: &M) -> anyhow::Result<()> {
    write_canonical(out, message, false)
}

/// `message` as pretty canonical JSON, with a trailing newline.
pub fn to_json_string<M: prost::Name>(message: &M) -> anyhow::Result<String> {
    let mut buf = Vec::new();
    write_json(&mut buf, message)?;
    String::from_utf8(buf).context("JSON output is not UTF-8")
}

/// How a column's cells line up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// One table column: its header, alignment and the widest it may get.
#[derive(Clone, Debug)]
pub struct Column {
    header: String,
    align: Align,
    max_width: Option<usize>,
}

impl Column {
    pub fn left(header: &str) -> Self {
        Column {
            header: header.to_owned(),
            align: Align::Left,
            max_width: None,
        }
    }

    pub fn right(header: &str) -> Self {
        Column {
            align: Align::Right,
            ..Column::left(header)
        }
    }

    /// Cells longer than `width` characters are cut and end in `…`.
    pub fn max_width(mut self, width: usize) -> Self {
        self.max_width = Some(width.max(1));
        self
    }
}

/// A plain-text table: a header row, then one row per item, columns two spaces apart.
#[derive(Clone, Debug)]
pub struct Table {
    columns: Vec<Column>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(columns: impl IntoIterator<Item = Column>) -> Self {
        Table {
            columns: columns.into_iter().collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells are blank, extra cells are dropped.
    pub fn push_row(&mut self, cells: impl IntoIterator<Item = String>) {
        let mut row: Vec<String> = cells.into_iter().take(self.columns.len()).collect();
        row.resize(self.columns.len(), String::new());
        self.rows.push(row);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Writes the table. Control characters become spaces; widths count characters.
    pub fn render(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let cells: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|row| {
                row.iter()
                    .zip(&self.columns)
                    .map(|(cell, column)| fit(cell, column.max_width))
                    .collect()
            })
            .collect();
        let widths: Vec<usize> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, column)| {
                cells
                    .iter()
                    .map(|row| row[i].chars().count())
                    .chain(std::iter::once(column.header.chars().count()))
                    .max()
                    .unwrap_or(0)
            })
            .collect();

        let headers: Vec<String> = self.columns.iter().map(|c| c.header.clone()).collect();
        for row in std::iter::once(&headers).chain(cells.iter()) {
            let mut line = String::new();
            for (i, (cell, column)) in row.iter().zip(&self.columns).enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                let pad = widths[i].saturating_sub(cell.chars().count());
                match column.align {
                    Align::Left => {
                        line.push_str(cell);
                        line.extend(std::iter::repeat_n(' ', pad));
                    }
                    Align::Right => {
                        line.extend(std::iter::repeat_n(' ', pad));
                        line.push_str(cell);
                    }
                }
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// One line of at most `max` characters: control characters (newlines, tabs) become
/// spaces, and a cut text ends in `…`.
pub fn fit(text: &str, max: Option<usize>) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match max {
        Some(max) if clean.chars().count() > max => {
            let mut cut: String = clean.chars().take(max.saturating_sub(1)).collect();
            cut.truncate(cut.trim_end().len());
            cut.push('…');
            cut
        }
        _ => clean,
    }
}

/// Writes `key  value` lines with the values lined up; rows with an empty value are skipped.
pub fn write_fields(out: &mut dyn Write, fields: &[(&str, String)]) -> std::io::Result<()> {
    let width = fields
        .iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(key, _)| key.chars().count())
        .max()
        .unwrap_or(0);
    for (key, value) in fields {
        if value.is_empty() {
            continue;
        }
        writeln!(out, "{key:<width$}  {value}")?;
    }
    Ok(())
}

/// A proto enum value's name as a short lowercase label: `SESSION_STATUS_AWAITING_CONFIRMATION`
/// with prefix `SESSION_STATUS_` becomes `awaiting-confirmation`.
pub fn enum_label(name: &str, prefix: &str) -> String {
    name.strip_prefix(prefix)
        .unwrap_or(name)
        .to_ascii_lowercase()
        .replace('_', "-")
}

/// Seconds since the Unix epoch now.
pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// RFC 3339 in UTC to the second, e.g. `2025-01-02T03:04:05Z`.
pub fn rfc3339(time: &prost_types::Timestamp) -> String {
    prost_types::Timestamp {
        seconds: time.seconds,
        nanos: 0,
    }
    .to_string()
}

/// How long ago `time` was, e.g. `5m ago`; `None` in the future or beyond 30 days.
pub fn relative(time: &prost_types::Timestamp, now: i64) -> Option<String> {
    let ago = now.checked_sub(time.seconds)?;
    Some(match ago {
        ..0 => return None,
        0..60 => "just now".to_owned(),
        60..3_600 => format!("{}m ago", ago / 60),
        3_600..86_400 => format!("{}h ago", ago / 3_600),
        86_400..2_592_000 => format!("{}d ago", ago / 86_400),
        _ => return None,
    })
}

/// A duration for people: `850ms`, `1.2s`, `3m05s`, `2h03m`.
pub fn duration(duration: &prost_types::Duration) -> String {
    let millis = duration
        .seconds
        .saturating_mul(1_000)
        .saturating_add(i64::from(duration.nanos) / 1_000_000)
        .max(0);
    match millis {
        0..1_000 => format!("{millis}ms"),
        1_000..60_000 => format!("{}.{}s", millis / 1_000, millis % 1_000 / 100),
        60_000..3_600_000 => format!("{}m{:02}s", millis / 60_000, millis % 60_000 / 1_000),
        _ => format!("{}h{:02}m", millis / 3_600_000, millis % 3_600_000 / 60_000),
    }
}

/// Parses a duration typed by a person: a number with a unit, `500ms`, `30s`, `5m`, `1h`,
/// `2d`, or several of them, `1h30m`; a bare number is seconds. For clap value parsers.
pub fn parse_duration(text: &str) -> Result<prost_types::Duration, String> {
    let input = text.trim();
    let invalid =
        || format!("invalid duration {text:?}: expected e.g. 500ms, 30s, 5m, 1h or 1h30m");
    if input.is_empty() {
        return Err(invalid());
    }
    if input.bytes().all(|b| b.is_ascii_digit()) {
        let seconds = input.parse::<i64>().map_err(|_| invalid())?;
        return Ok(prost_types::Duration { seconds, nanos: 0 });
    }
    let mut millis: i64 = 0;
    let mut rest = input;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(invalid());
        }
        let number: i64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let per_unit: i64 = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(invalid()),
        };
        rest = &rest[unit_len..];
        millis = number
            .checked_mul(per_unit)
            .and_then(|part| millis.checked_add(part))
            .ok_or_else(invalid)?;
    }
    Ok(prost_types::Duration {
        seconds: millis / 1_000,
        nanos: i32::try_from(millis % 1_000 * 1_000_000).map_err(|_| invalid())?,
    })
}

/// For tables: relative when recent, else RFC 3339; `-` when unset.
pub fn short_time(time: Option<&prost_types::Timestamp>, now: i64) -> String {
    match time {
        None => "-".to_owned(),
        Some(time) => relative(time, now).unwrap_or_else(|| rfc3339(time)),
    }
}

/// For key/value blocks: RFC 3339 with the relative time after it; empty when unset.
pub fn long_time(time: Option<&prost_types::Timestamp>, now: i64) -> String {
    match time {
        None => String::new(),
        Some(time) => match relative(time, now) {
            Some(ago) => format!("{} ({ago})", rfc3339(time)),
            None => rfc3339(time),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(table: &Table) -> String {
        let mut buf = Vec::new();
        table.render(&mut buf).expect("render");
        String::from_utf8(buf).expect("utf8")
    }

    #[test]
    fn json_output_is_canonical_proto3() {
        let session = pb::Session {
            name: "sessions/abc".into(),
            display_name: "Hello".into(),
            status: pb::SessionStatus::Running as i32,
            message_count: 42,
            permission_mode: pb::PermissionMode::AutoApprove as i32,
            create_time: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 0,
            }),
            labels: [("team".to_owned(), "core".to_owned())].into(),
            ..Default::default()
        };
        let json = to_json_string(&session).expect("json");
        let value: serde_json::Value = serde_json::from_str(&json).expect("parse");
        assert_eq!(value["name"], "sessions/abc");
        assert_eq!(value["displayName"], "Hello");
        assert_eq!(value["status"], "SESSION_STATUS_RUNNING");
        assert_eq!(value["permissionMode"], "PERMISSION_MODE_AUTO_APPROVE");
        // int64 is a string in canonical JSON.
        assert_eq!(value["messageCount"], "42");
        assert_eq!(value["createTime"], "2023-11-14T22:13:20Z");
        assert_eq!(value["labels"]["team"], "core");
        // Defaults are omitted.
        assert!(value.get("pinned").is_none());
        assert!(json.ends_with("}\n"), "{json}");

        let mut line = Vec::new();
        write_json_line(&mut line, &session).expect("line");
        let line = String::from_utf8(line).expect("utf8");
        assert_eq!(line.lines().count(), 1);

        let mut empty = Vec::new();
        write_json(&mut empty, &()).expect("empty");
        assert_eq!(String::from_utf8(empty).expect("utf8"), "{}\n");
    }

    #[test]
    fn table_aligns_columns_and_truncates() {
        let mut table = Table::new([
            Column::left("ID"),
            Column::left("TITLE").max_width(10),
            Column::right("N"),
        ]);
        table.push_row(["a".to_owned(), "short".to_owned(), "7".to_owned()]);
        table.push_row([
            "bbbb".to_owned(),
            "a rather long\ntitle".to_owned(),
            "1234".to_owned(),
        ]);
        table.push_row(["c".to_owned()]);
        assert_eq!(
            render(&table),
            "ID    TITLE         N\n\
             a     short         7\n\
             bbbb  a rather…  1234\n\
             c\n"
        );
    }

    #[test]
    fn fit_cuts_on_characters_not_bytes() {
        assert_eq!(fit("héllo wörld", Some(6)), "héllo…");
        assert_eq!(fit("ab", Some(2)), "ab");
        assert_eq!(fit("abc", Some(1)), "…");
        assert_eq!(fit("tab\there", None), "tab here");
    }

    #[test]
    fn fields_line_up_and_skip_empty_values() {
        let mut buf = Vec::new();
        write_fields(
            &mut buf,
            &[
                ("ID", "x".into()),
                ("Nothing here", String::new()),
                ("Title", "y".into()),
            ],
        )
        .expect("write");
        assert_eq!(
            String::from_utf8(buf).expect("utf8"),
            "ID     x\nTitle  y\n"
        );
    }

    #[test]
    fn times_and_enum_labels() {
        let t = |seconds| prost_types::Timestamp { seconds, nanos: 5 };
        let now = 1_700_000_000;
        assert_eq!(short_time(Some(&t(now - 30)), now), "just now");
        assert_eq!(short_time(Some(&t(now - 300)), now), "5m ago");
        assert_eq!(short_time(Some(&t(now - 7_200)), now), "2h ago");
        assert_eq!(short_time(Some(&t(now - 3 * 86_400)), now), "3d ago");
        assert_eq!(
            short_time(Some(&t(now - 90 * 86_400)), now),
            "2023-08-16T22:13:20Z"
        );
        assert_eq!(short_time(Some(&t(now + 100)), now), "2023-11-14T22:15:00Z");
        assert_eq!(short_time(None, now), "-");
        assert_eq!(
            long_time(Some(&t(now - 60)), now),
            "2023-11-14T22:12:20Z (1m ago)"
        );
        assert_eq!(
            enum_label("SESSION_STATUS_AWAITING_CONFIRMATION", "SESSION_STATUS_"),
            "awaiting-confirmation"
        );
    }

    #[test]
    fn durations_read_well() {
        let d = |seconds, nanos| prost_types::Duration { seconds, nanos };
        assert_eq!(duration(&d(0, 0)), "0ms");
        assert_eq!(duration(&d(0, 850_000_000)), "850ms");
        assert_eq!(duration(&d(1, 250_000_000)), "1.2s");
        assert_eq!(duration(&d(185, 0)), "3m05s");
        assert_eq!(duration(&d(7_380, 0)), "2h03m");
        assert_eq!(duration(&d(-5, 0)), "0ms");
    }

    #[test]
    fn durations_parse() {
        let d = |seconds, nanos| Ok(prost_types::Duration { seconds, nanos });
        assert_eq!(parse_duration("30s"), d(30, 0));
        assert_eq!(parse_duration("5m"), d(300, 0));
        assert_eq!(parse_duration("1h"), d(3_600, 0));
        assert_eq!(parse_duration("1h30m"), d(5_400, 0));
        assert_eq!(parse_duration(" 1500ms "), d(1, 500_000_000));
        assert_eq!(parse_duration("2d"), d(172_800, 0));
        assert_eq!(parse_duration("45"), d(45, 0));
        for bad in [
            "",
            "s",
            "5x",
            "1.5s",
            "-3s",
            "m5",
            "5 m",
            "99999999999999999999s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
