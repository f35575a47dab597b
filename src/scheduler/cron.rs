//! Five-field cron expressions evaluated in an IANA time zone.
//!
//! # Syntax
//!
//! `minute hour day-of-month month day-of-week`, separated by spaces or tabs:
//!
//! | field        | values                 | names                          |
//! |--------------|------------------------|--------------------------------|
//! | minute       | 0-59                   |                                |
//! | hour         | 0-23                   |                                |
//! | day-of-month | 1-31                   |                                |
//! | month        | 1-12                   | `JAN`-`DEC` (case-insensitive) |
//! | day-of-week  | 0-7 (0 and 7 = Sunday) | `SUN`-`SAT` (case-insensitive) |
//!
//! Each field is a comma-separated list of items; an item is `*` (every value), a value
//! `a`, a range `a-b` (`a` must not be after `b`; ranges do not wrap around), or one of
//! those with a step: `*/n`, `a-b/n`, or `a/n` (meaning `a` through the field's maximum;
//! for day-of-week that maximum is 6, Saturday). Steps must be at least 1.
//!
//! Macros stand alone: `@yearly` and `@annually` (`0 0 1 1 *`), `@monthly` (`0 0 1 * *`),
//! `@weekly` (`0 0 * * 0`), `@daily` and `@midnight` (`0 0 * * *`), `@hourly`
//! (`0 * * * *`). `@reboot` is rejected, as are six- and seven-field forms (seconds,
//! years).
//!
//! Day matching follows Vixie cron: when both day-of-month and day-of-week are
//! restricted, a day matches if EITHER field matches; otherwise both must match. As in
//! Vixie cron, a field counts as unrestricted when its text starts with `*` (so `*/2`
//! is unrestricted). An expression that can never fire (`0 0 30 2 *`,
//! `0 0 31 4,6,9,11 *`) is rejected when parsed.
//!
//! # Daylight saving time
//!
//! Fire times are wall-clock times in the zone.
//! - Gap (spring forward: the wall time does not exist that day): the fire happens at
//!   the wall time shifted forward by the length of the gap (02:30 in a 02:00→03:00 gap
//!   fires at 03:30, the same rule as RFC 5545/Temporal "compatible"); if that instant
//!   is also a regular fire time it fires once.
//! - Overlap (fall back: the wall time occurs twice): it fires once, at the first
//!   occurrence — except when the hour field is `*`, in which case it fires at both
//!   occurrences, because such expressions mean "every N minutes" in elapsed time.
//!
//! "The hour field is `*`" means exactly the text `*` (as in `*/30 * * * *` or
//! `@hourly`); `*/2` or `0-23` in the hour field fire once in an overlap.
//! [`Cron::next_after`] never returns the same instant twice for repeated calls: each
//! result is strictly after the instant it was given.
//!
//! # Evaluation
//!
//! [`Cron::next_after`] walks the time zone's offset segments (the spans between
//! transitions) and, within each, jumps from matching day to matching day and then to
//! the first matching hour and minute with bit operations, so a call costs
//! microseconds even for rare schedules such as `0 0 29 2 *`.

use std::fmt;

use crate::domain::Timestamp;

/// How far ahead [`Cron::next_after`] looks: ten years of 365.25 days, rounded up.
const SEARCH_HORIZON_DAYS: i64 = 3_653;
const SECONDS_PER_DAY: i64 = 86_400;
const MICROS_PER_SECOND: i64 = 1_000_000;

const MONTH_NAMES: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const MONTH_FULL_NAMES: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// A parsed cron expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cron {
    /// Bit `m` set: fires at minute `m` (0-59).
    minutes: u64,
    /// Bit `h` set: fires at hour `h` (0-23).
    hours: u32,
    /// Bit `d` set: fires on day-of-month `d` (1-31).
    days_of_month: u32,
    /// Bit `m` set: fires in month `m` (1-12).
    months: u16,
    /// Bit `d` set: fires on weekday `d` (0 = Sunday .. 6 = Saturday).
    days_of_week: u8,
    /// The day-of-month field does not start with `*`.
    dom_restricted: bool,
    /// The day-of-week field does not start with `*`.
    dow_restricted: bool,
    /// The hour field is exactly `*`: fire at both occurrences of a repeated wall time.
    hour_any: bool,
    /// The expression as given, trimmed.
    source: String,
}

/// Why an expression is invalid.
///
/// `field` is one of `"minute"`, `"hour"`, `"day_of_month"`, `"month"`,
/// `"day_of_week"` or `"expression"` (wrong field count, unknown or unsupported macro,
/// never fires is reported on `"day_of_month"`); `message` says what is wrong in plain
/// words, prefixed with the field's name, e.g. `hour: 25 is out of range 0-23`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CronError {
    pub field: &'static str,
    pub message: String,
}

impl fmt::Display for CronError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CronError {}

/// An IANA time zone.
#[derive(Clone, Debug)]
pub struct Zone {
    tz: jiff::tz::TimeZone,
    name: String,
}

impl Zone {
    /// Coordinated Universal Time: no offset, no transitions.
    pub fn utc() -> Zone {
        Zone {
            tz: jiff::tz::TimeZone::UTC,
            name: "UTC".to_string(),
        }
    }

    /// Looks up an IANA time zone name such as `Europe/Berlin`, or `UTC`, in the time
    /// zone database bundled into the binary (or the system's, when it has one).
    /// Names match case-insensitively and [`Zone::name`] returns the database's
    /// spelling; legacy link names such as `US/Eastern` are accepted too.
    ///
    /// Errors name the problem, e.g. `unknown time zone "Mars/Base" ...`. An empty name
    /// is an error here: the caller decides what an absent zone means.
    pub fn parse(name: &str) -> Result<Zone, String> {
        if name.trim().is_empty() {
            return Err("time zone name is empty".to_string());
        }
        let unknown = || {
            format!(
                "unknown time zone {name:?} (expected an IANA time zone name such as \
                 \"Europe/Berlin\", or \"UTC\")"
            )
        };
        let tz = jiff::tz::TimeZone::get(name).map_err(|_| unknown())?;
        // `Etc/Unknown` resolves to jiff's "unknown" zone, which has no IANA name.
        let canonical = tz.iana_name().ok_or_else(unknown)?.to_string();
        Ok(Zone {
            tz,
            name: canonical,
        })
    }

    /// The zone's IANA name, e.g. `America/New_York` or `UTC`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The zone's offset from UTC, in seconds, at the instant `second` (Unix seconds);
    /// None if the instant is outside the range the time library handles.
    fn offset_at(&self, second: i64) -> Option<i64> {
        let ts = jiff::Timestamp::from_second(second).ok()?;
        Some(i64::from(self.tz.to_offset(ts).seconds()))
    }

    /// The last transition at or before `second`: its instant and the offset in effect
    /// just before it.
    fn transition_at_or_before(&self, second: i64) -> Option<(i64, i64)> {
        let probe = jiff::Timestamp::from_second(second.checked_add(1)?).ok()?;
        let at = self.tz.preceding(probe).next()?.timestamp().as_second();
        let before = self.offset_at(at.checked_sub(1)?)?;
        Some((at, before))
    }

    /// The first transition strictly after `second`.
    fn transition_after(&self, second: i64) -> Option<i64> {
        let ts = jiff::Timestamp::from_second(second).ok()?;
        Some(self.tz.following(ts).next()?.timestamp().as_second())
    }
}

/// One of the five fields: its names for messages and its value range.
struct FieldSpec {
    /// The `CronError::field` key.
    key: &'static str,
    /// The name used in messages.
    label: &'static str,
    min: u32,
    /// The largest value accepted.
    max: u32,
    /// The upper end of `*` and of `a/n`.
    star_max: u32,
    /// Names for the values `min..`, if any.
    names: &'static [&'static str],
    /// Describes what an invalid token should have been.
    expected: &'static str,
}

const MINUTE: FieldSpec = FieldSpec {
    key: "minute",
    label: "minute",
    min: 0,
    max: 59,
    star_max: 59,
    names: &[],
    expected: "a number",
};
const HOUR: FieldSpec = FieldSpec {
    key: "hour",
    label: "hour",
    min: 0,
    max: 23,
    star_max: 23,
    names: &[],
    expected: "a number",
};
const DAY_OF_MONTH: FieldSpec = FieldSpec {
    key: "day_of_month",
    label: "day-of-month",
    min: 1,
    max: 31,
    star_max: 31,
    names: &[],
    expected: "a number",
};
const MONTH: FieldSpec = FieldSpec {
    key: "month",
    label: "month",
    min: 1,
    max: 12,
    star_max: 12,
    names: &MONTH_NAMES,
    expected: "a number or a month name (JAN-DEC)",
};
const DAY_OF_WEEK: FieldSpec = FieldSpec {
    key: "day_of_week",
    label: "day-of-week",
    min: 0,
    max: 7,
    star_max: 6,
    names: &DAY_NAMES,
    expected: "a number or a day name (SUN-SAT)",
};

impl FieldSpec {
    fn error(&self, what: impl fmt::Display) -> CronError {
        CronError {
            field: self.key,
            message: format!("{}: {what}", self.label),
        }
    }

    /// Parses one value: a number in range, or a name.
    fn value(&self, token: &str, item: &str) -> Result<u32, CronError> {
        if token.is_empty() {
            return Err(self.error(format_args!("missing value in {item:?}")));
        }
        if token.bytes().all(|b| b.is_ascii_digit()) {
            return match token.parse::<u32>() {
                Ok(v) if (self.min..=self.max).contains(&v) => Ok(v),
                _ => Err(self.error(format_args!(
                    "{token} is out of range {}-{}",
                    self.min, self.max
                ))),
            };
        }
        self.names
            .iter()
            .zip(self.min..)
            .find(|(name, _)| name.eq_ignore_ascii_case(token))
            .map(|(_, v)| v)
            .ok_or_else(|| self.error(format_args!("{token:?} is not {}", self.expected)))
    }

    /// Parses a whole field into a bitset (bit `v` for value `v`).
    fn parse(&self, text: &str) -> Result<u64, CronError> {
        let mut bits = 0u64;
        for item in text.split(',') {
            if item.is_empty() {
                return Err(self.error(format_args!("empty item in list {text:?}")));
            }
            bits |= self.item(item)?;
        }
        Ok(bits)
    }

    fn item(&self, item: &str) -> Result<u64, CronError> {
        let (base, step) = match item.split_once('/') {
            None => (item, None),
            Some((_, rest)) if rest.contains('/') => {
                return Err(self.error(format_args!("{item:?} has more than one step")));
            }
            Some((base, step)) => (base, Some(self.step(step, item)?)),
        };
        let (start, end) = if base == "*" {
            (self.min, self.star_max)
        } else if let Some((a, b)) = base.split_once('-') {
            if a.is_empty() {
                return Err(self.error(format_args!("range {item:?} is missing its start")));
            }
            if b.is_empty() {
                return Err(self.error(format_args!("range {item:?} is missing its end")));
            }
            let (a, b) = (self.value(a, item)?, self.value(b, item)?);
            if a > b {
                return Err(self.error(format_args!(
                    "range {a}-{b} is reversed (its start is after its end); ranges do not \
                     wrap around, use a list such as {a}-{},{}-{b}",
                    self.star_max.max(a),
                    self.min
                )));
            }
            (a, b)
        } else {
            let a = self.value(base, item)?;
            match step {
                // `a/n`: from `a` through the field's maximum.
                Some(_) => (a, self.star_max.max(a)),
                None => (a, a),
            }
        };
        let step = step.unwrap_or(1);
        let mut bits = 0u64;
        let mut v = start;
        while v <= end {
            bits |= 1 << v;
            v = v.saturating_add(step);
        }
        Ok(bits)
    }

    fn step(&self, step: &str, item: &str) -> Result<u32, CronError> {
        if step.is_empty() {
            return Err(self.error(format_args!("step is missing in {item:?}")));
        }
        if !step.bytes().all(|b| b.is_ascii_digit()) {
            return Err(self.error(format_args!("step {step:?} in {item:?} is not a number")));
        }
        match step.parse::<u32>() {
            Ok(0) => Err(self.error(format_args!("step 0 in {item:?} must be at least 1"))),
            Ok(n) => Ok(n),
            // Larger than any field: the same as the largest useful step.
            Err(_) => Ok(u32::MAX),
        }
    }
}

/// Builds the error for an unsupported field count.
fn field_count_error(count: usize) -> CronError {
    let hint = match count {
        6 => "; seconds are not supported",
        7 => "; seconds and years are not supported",
        _ => "",
    };
    CronError {
        field: "expression",
        message: format!(
            "expected 5 fields (minute hour day-of-month month day-of-week), got {count}{hint}"
        ),
    }
}

/// The five-field form of a macro.
fn expand_macro(name: &str) -> Result<&'static str, CronError> {
    let lower = name.to_ascii_lowercase();
    match lower.as_str() {
        "@yearly" | "@annually" => Ok("0 0 1 1 *"),
        "@monthly" => Ok("0 0 1 * *"),
        "@weekly" => Ok("0 0 * * 0"),
        "@daily" | "@midnight" => Ok("0 0 * * *"),
        "@hourly" => Ok("0 * * * *"),
        "@reboot" => Err(CronError {
            field: "expression",
            message: "@reboot is not supported: schedules fire at wall-clock times, not when \
                      the server starts"
                .to_string(),
        }),
        _ => Err(CronError {
            field: "expression",
            message: format!(
                "unknown macro {name:?}; expected @yearly, @annually, @monthly, @weekly, \
                 @daily, @midnight or @hourly"
            ),
        }),
    }
}

impl Cron {
    /// Parses a five-field expression or a macro (see the module documentation).
    pub fn parse(expression: &str) -> Result<Cron, CronError> {
        let source = expression.trim();
        let fields: Vec<&str> = source.split_whitespace().collect();
        let expanded: Vec<&str>;
        let fields = match fields.first() {
            Some(first) if first.starts_with('@') => {
                let five = expand_macro(first)?;
                if fields.len() > 1 {
                    return Err(CronError {
                        field: "expression",
                        message: format!(
                            "a macro stands alone, but {first} is followed by {:?}",
                            fields[1..].join(" ")
                        ),
                    });
                }
                expanded = five.split(' ').collect();
                &expanded
            }
            _ => &fields,
        };
        let [minute, hour, dom, month, dow] = fields[..] else {
            return Err(field_count_error(fields.len()));
        };

        let minutes = MINUTE.parse(minute)?;
        let hours = HOUR.parse(hour)?;
        let days_of_month = DAY_OF_MONTH.parse(dom)?;
        let months = MONTH.parse(month)?;
        let dow_bits = DAY_OF_WEEK.parse(dow)?;
        // 7 is Sunday, like 0.
        let days_of_week = ((dow_bits | (dow_bits >> 7)) & 0x7f) as u8;

        let cron = Cron {
            minutes,
            hours: hours as u32,
            days_of_month: days_of_month as u32,
            months: months as u16,
            days_of_week,
            dom_restricted: !dom.starts_with('*'),
            dow_restricted: !dow.starts_with('*'),
            hour_any: hour == "*",
            source: source.to_string(),
        };
        cron.check_fires(dom, month)?;
        Ok(cron)
    }

    /// Rejects expressions whose day-of-month never occurs in any of their months (only
    /// possible when both day fields must match; with the OR rule the weekday always
    /// comes round).
    fn check_fires(&self, dom: &str, month: &str) -> Result<(), CronError> {
        if self.dom_restricted && self.dow_restricted {
            return Ok(());
        }
        let fires = (1..=12u32)
            .filter(|m| self.months & (1 << m) != 0)
            .any(|m| (1..=max_days_in_month(m)).any(|d| self.days_of_month & (1 << d) != 0));
        if fires {
            return Ok(());
        }
        let days: Vec<String> = (1..=31u32)
            .filter(|d| self.days_of_month & (1 << d) != 0)
            .map(|d| d.to_string())
            .collect();
        let months: Vec<&str> = (1..=12usize)
            .filter(|m| self.months & (1 << m) != 0)
            .map(|m| MONTH_FULL_NAMES[m - 1])
            .collect();
        let (noun, verb) = if days.len() == 1 {
            ("day", "does")
        } else {
            ("days", "do")
        };
        Err(DAY_OF_MONTH.error(format_args!(
            "the expression can never fire: {noun} {} {verb} not occur in {} \
             (day-of-month {dom:?}, month {month:?})",
            days.join(","),
            months.join(", ")
        )))
    }

    /// The expression as given (trimmed).
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The first fire time strictly after `after`, in `zone`, following the daylight
    /// saving rules in the module documentation.
    ///
    /// Returns None if there is none within ten years (3,653 days) of `after`. Without
    /// a day-of-week condition every accepted expression fires at least once in any
    /// eight years (29 February, across 2100), so the bound only bites on rare
    /// combinations such as `0 0 29 2 */7` (29 February on a Sunday: 2032, then 2060).
    /// Also None when the search would leave the years -9999..=9999 that the time zone
    /// library handles.
    pub fn next_after(&self, after: Timestamp, zone: &Zone) -> Option<Timestamp> {
        // Fire times are whole seconds; the first candidate is the next whole second.
        let first = after.0.div_euclid(MICROS_PER_SECOND).checked_add(1)?;
        let horizon = first.checked_add(SEARCH_HORIZON_DAYS * SECONDS_PER_DAY)?;
        let mut segment_start = first;
        while segment_start < horizon {
            // The segment [segment_start, segment_end) has one offset throughout.
            let offset = zone.offset_at(segment_start)?;
            let segment_end = zone
                .transition_after(segment_start)
                .map_or(horizon, |t| t.min(horizon));
            let wall_end = segment_end.checked_add(offset)?;
            let transition = zone.transition_at_or_before(segment_start);

            // Regular fire times: wall times in this segment, read with its offset.
            let mut wall_from = segment_start.checked_add(offset)?;
            if let Some((at, before)) = transition
                && before > offset
                && !self.hour_any
            {
                // Fall back: wall times before `at + before` already occurred once,
                // before the transition; fire only at the first occurrence.
                wall_from = wall_from.max(at.checked_add(before)?);
            }
            let mut best = self
                .next_wall(ceil_minute(wall_from), wall_end)
                .map(|wall| wall - offset);

            // Spring forward: wall times in [at + before, at + offset) do not exist;
            // read with the earlier offset they land shifted forward by the gap.
            if let Some((at, before)) = transition
                && before < offset
            {
                let gap_from = at.checked_add(before)?.max(first.checked_add(before)?);
                let gap_end = at.checked_add(offset)?;
                if let Some(wall) = self.next_wall(ceil_minute(gap_from), gap_end) {
                    let shifted = wall - before;
                    best = Some(best.map_or(shifted, |b| b.min(shifted)));
                }
            }

            if let Some(second) = best {
                return Some(Timestamp(second.checked_mul(MICROS_PER_SECOND)?));
            }
            segment_start = segment_end;
        }
        None
    }

    /// The first matching wall time in `[from, limit)`, where both are wall-clock
    /// seconds counted as if the zone were UTC and `from` is a whole minute.
    fn next_wall(&self, from: i64, limit: i64) -> Option<i64> {
        if from >= limit {
            return None;
        }
        let mut day = from.div_euclid(SECONDS_PER_DAY);
        let second_of_day = from.rem_euclid(SECONDS_PER_DAY);
        let mut hour = (second_of_day / 3600) as u32;
        let mut minute = ((second_of_day % 3600) / 60) as u32;
        let (mut year, mut month, mut dom) = civil_from_days(day);
        loop {
            if day.checked_mul(SECONDS_PER_DAY)? >= limit {
                return None;
            }
            let month_len = days_in_month(year, month);
            if self.months & (1 << month) == 0 {
                // Skip the rest of the month.
                day += i64::from(month_len - dom) + 1;
                (year, month, dom) = next_month(year, month);
            } else {
                if self.day_matches(dom, weekday(day))
                    && let Some((h, m)) = self.first_time_from(hour, minute)
                {
                    let wall = day * SECONDS_PER_DAY + i64::from(h) * 3600 + i64::from(m) * 60;
                    return (wall < limit).then_some(wall);
                }
                day += 1;
                if dom == month_len {
                    (year, month, dom) = next_month(year, month);
                } else {
                    dom += 1;
                }
            }
            hour = 0;
            minute = 0;
        }
    }

    /// Whether a date with day-of-month `dom` and weekday `dow` (0 = Sunday) matches
    /// (its month already does).
    fn day_matches(&self, dom: u32, dow: u32) -> bool {
        let dom_hit = self.days_of_month & (1 << dom) != 0;
        let dow_hit = self.days_of_week & (1 << dow) != 0;
        if self.dom_restricted && self.dow_restricted {
            dom_hit || dow_hit
        } else {
            dom_hit && dow_hit
        }
    }

    /// The first matching (hour, minute) at or after `hour:minute` within a day.
    fn first_time_from(&self, hour: u32, minute: u32) -> Option<(u32, u32)> {
        let mut h = hour;
        let mut from_minute = minute;
        while h < 24 {
            if self.hours & (1 << h) != 0 {
                let rest = self.minutes >> from_minute;
                if rest != 0 {
                    return Some((h, from_minute + rest.trailing_zeros()));
                }
            }
            h += 1;
            from_minute = 0;
        }
        None
    }
}

/// Rounds wall-clock seconds up to a whole minute.
fn ceil_minute(seconds: i64) -> i64 {
    let rem = seconds.rem_euclid(60);
    if rem == 0 {
        seconds
    } else {
        seconds - rem + 60
    }
}

fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The most days `month` ever has (29 for February).
fn max_days_in_month(month: u32) -> u32 {
    days_in_month(2000, month)
}

fn next_month(year: i64, month: u32) -> (i64, u32, u32) {
    if month == 12 {
        (year + 1, 1, 1)
    } else {
        (year, month + 1, 1)
    }
}

/// The weekday (0 = Sunday) of a day counted from 1970-01-01, a Thursday.
fn weekday(day: i64) -> u32 {
    (day + 4).rem_euclid(7) as u32
}

/// (year, month 1-12, day 1-31) of a day counted from 1970-01-01, in the proleptic
/// Gregorian calendar (Howard Hinnant's `civil_from_days`).
fn civil_from_days(day: i64) -> (i64, u32, u32) {
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cron(expression: &str) -> Cron {
        Cron::parse(expression).unwrap_or_else(|e| panic!("{expression:?}: {e}"))
    }

    fn zone(name: &str) -> Zone {
        Zone::parse(name).unwrap()
    }

    /// An RFC 3339 instant, e.g. `2025-03-09T07:30:00Z`.
    fn at(rfc3339: &str) -> Timestamp {
        Timestamp(rfc3339.parse::<jiff::Timestamp>().unwrap().as_microsecond())
    }

    fn show(ts: Timestamp) -> String {
        jiff::Timestamp::from_microsecond(ts.0).unwrap().to_string()
    }

    fn next(expression: &str, after: &str, zone_name: &str) -> String {
        let t = cron(expression)
            .next_after(at(after), &zone(zone_name))
            .unwrap_or_else(|| panic!("{expression:?} never fires after {after}"));
        show(t)
    }

    /// The fire times in `[from, until)`, checking they strictly increase.
    fn fires(expression: &str, zone_name: &str, from: &str, until: &str) -> Vec<String> {
        let c = cron(expression);
        let z = zone(zone_name);
        let until = at(until);
        // Start just before `from` so a fire exactly at `from` counts.
        let mut t = Timestamp(at(from).0 - 1);
        let mut out = Vec::new();
        while let Some(n) = c.next_after(t, &z) {
            assert!(n > t, "{expression}: {} is not after {}", show(n), show(t));
            if n >= until {
                break;
            }
            out.push(show(n));
            t = n;
        }
        out
    }

    fn err(expression: &str) -> CronError {
        match Cron::parse(expression) {
            Ok(c) => panic!("{expression:?} parsed as {c:?}"),
            Err(e) => e,
        }
    }

    fn assert_err(expression: &str, field: &str, fragments: &[&str]) {
        let e = err(expression);
        assert_eq!(e.field, field, "{expression:?}: {e}");
        for fragment in fragments {
            assert!(
                e.message.contains(fragment),
                "{expression:?}: {:?} lacks {fragment:?}",
                e.message
            );
        }
        assert_eq!(e.to_string(), e.message);
    }

    fn bits(values: &[u32]) -> u64 {
        values.iter().fold(0, |acc, v| acc | 1 << v)
    }

    // ---- parsing ----

    #[test]
    fn star_matches_every_value_and_is_unrestricted() {
        let c = cron("* * * * *");
        assert_eq!(c.minutes, (1u64 << 60) - 1);
        assert_eq!(c.hours, (1u32 << 24) - 1);
        assert_eq!(c.days_of_month, !1u32);
        assert_eq!(c.months, ((1u16 << 13) - 1) & !1);
        assert_eq!(c.days_of_week, 0x7f);
        assert!(!c.dom_restricted && !c.dow_restricted && c.hour_any);
        assert_eq!(c.as_str(), "* * * * *");
    }

    #[test]
    fn numbers_ranges_steps_and_lists() {
        let c = cron("5 0-3 1,15,31 */3 1-5");
        assert_eq!(c.minutes, bits(&[5]));
        assert_eq!(c.hours as u64, bits(&[0, 1, 2, 3]));
        assert_eq!(c.days_of_month as u64, bits(&[1, 15, 31]));
        assert_eq!(c.months as u64, bits(&[1, 4, 7, 10]));
        assert_eq!(c.days_of_week as u64, bits(&[1, 2, 3, 4, 5]));
        assert!(c.dom_restricted && c.dow_restricted && !c.hour_any);

        assert_eq!(cron("*/15 * * * *").minutes, bits(&[0, 15, 30, 45]));
        assert_eq!(cron("10-30/10 * * * *").minutes, bits(&[10, 20, 30]));
        assert_eq!(cron("5/20 * * * *").minutes, bits(&[5, 25, 45]));
        assert_eq!(cron("50/100 * * * *").minutes, bits(&[50]));
        assert_eq!(
            cron("0-4,30-59/15,7 * * * *").minutes,
            bits(&[0, 1, 2, 3, 4, 7, 30, 45])
        );
        assert_eq!(cron("0 */5 * * *").hours as u64, bits(&[0, 5, 10, 15, 20]));
        assert_eq!(
            cron("0 0 */10 * *").days_of_month as u64,
            bits(&[1, 11, 21, 31])
        );
        assert_eq!(cron("0 0 * 2/5 *").months as u64, bits(&[2, 7, 12]));
        assert_eq!(cron("0 0 * * */2").days_of_week as u64, bits(&[0, 2, 4, 6]));
        assert_eq!(cron("0 0 * * 1/2").days_of_week as u64, bits(&[1, 3, 5]));
        assert_eq!(cron("0 0 * * 0-7/3").days_of_week as u64, bits(&[0, 3, 6]));
    }

    #[test]
    fn month_and_day_names_are_case_insensitive() {
        let c = cron("0 0 * jan,Mar-MAY,dec mon-WED,fri");
        assert_eq!(c.months as u64, bits(&[1, 3, 4, 5, 12]));
        assert_eq!(c.days_of_week as u64, bits(&[1, 2, 3, 5]));
        assert_eq!(cron("0 0 * JAN-DEC/6 *").months as u64, bits(&[1, 7]));
        assert_eq!(cron("0 0 * * SUN,sat").days_of_week as u64, bits(&[0, 6]));
        assert_eq!(cron("0 0 * * TUE/2").days_of_week as u64, bits(&[2, 4, 6]));
    }

    #[test]
    fn seven_is_sunday_like_zero() {
        assert_eq!(cron("0 0 * * 7").days_of_week as u64, bits(&[0]));
        assert_eq!(cron("0 0 * * 0").days_of_week as u64, bits(&[0]));
        assert_eq!(cron("0 0 * * 5-7").days_of_week as u64, bits(&[0, 5, 6]));
        assert_eq!(cron("0 0 * * 0-7").days_of_week, 0x7f);
        assert_eq!(cron("0 0 * * 7/2").days_of_week as u64, bits(&[0]));
    }

    #[test]
    fn macros_expand_to_their_five_fields() {
        for (name, five) in [
            ("@yearly", "0 0 1 1 *"),
            ("@annually", "0 0 1 1 *"),
            ("@monthly", "0 0 1 * *"),
            ("@weekly", "0 0 * * 0"),
            ("@daily", "0 0 * * *"),
            ("@midnight", "0 0 * * *"),
            ("@hourly", "0 * * * *"),
            ("@DAILY", "0 0 * * *"),
        ] {
            let m = cron(name);
            let f = cron(five);
            assert_eq!(m.as_str(), name);
            assert_eq!(
                (
                    m.minutes,
                    m.hours,
                    m.days_of_month,
                    m.months,
                    m.days_of_week
                ),
                (
                    f.minutes,
                    f.hours,
                    f.days_of_month,
                    f.months,
                    f.days_of_week
                ),
                "{name}"
            );
            assert_eq!(
                (m.dom_restricted, m.dow_restricted, m.hour_any),
                (f.dom_restricted, f.dow_restricted, f.hour_any),
                "{name}"
            );
        }
    }

    #[test]
    fn source_is_trimmed_and_whitespace_may_be_tabs() {
        let c = cron("  0\t9  *\t* MON-FRI \n");
        assert_eq!(c.as_str(), "0\t9  *\t* MON-FRI");
        assert_eq!(c.hours as u64, bits(&[9]));
        assert_eq!(cron(" @daily ").as_str(), "@daily");
    }

    #[test]
    fn vixie_restriction_is_by_leading_star() {
        let c = cron("0 0 */2 * 1");
        assert!(!c.dom_restricted && c.dow_restricted);
        let c = cron("0 0 1-31 * *");
        assert!(c.dom_restricted && !c.dow_restricted);
        assert!(!cron("0 */1 * * *").hour_any);
        assert!(cron("@hourly").hour_any);
        assert!(!cron("@daily").hour_any);
    }

    #[test]
    fn wrong_field_counts_are_rejected() {
        assert_err(
            "0 0 * * * *",
            "expression",
            &[
                "expected 5 fields (minute hour day-of-month month day-of-week), got 6; seconds are not supported",
            ],
        );
        assert_err(
            "0 0 0 * * * 2025",
            "expression",
            &["got 7; seconds and years"],
        );
        assert_err("0 0 * *", "expression", &["expected 5 fields", "got 4"]);
        assert_err("", "expression", &["got 0"]);
        assert_err("   ", "expression", &["got 0"]);
    }

    #[test]
    fn bad_macros_are_rejected() {
        assert_err("@reboot", "expression", &["@reboot is not supported"]);
        assert_err(
            "@every 5m",
            "expression",
            &["unknown macro \"@every\"", "@hourly"],
        );
        assert_err(
            "@sometimes",
            "expression",
            &["unknown macro \"@sometimes\""],
        );
        assert_err("@daily 0", "expression", &["macro stands alone", "@daily"]);
    }

    #[test]
    fn out_of_range_values_are_rejected() {
        assert_err("60 * * * *", "minute", &["minute: 60 is out of range 0-59"]);
        assert_err("0 25 * * *", "hour", &["hour: 25 is out of range 0-23"]);
        assert_err("0 24 * * *", "hour", &["hour: 24 is out of range 0-23"]);
        assert_err(
            "0 0 0 * *",
            "day_of_month",
            &["day-of-month: 0 is out of range 1-31"],
        );
        assert_err("0 0 32 * *", "day_of_month", &["32 is out of range 1-31"]);
        assert_err("0 0 * 13 *", "month", &["month: 13 is out of range 1-12"]);
        assert_err("0 0 * 0 *", "month", &["0 is out of range 1-12"]);
        assert_err(
            "0 0 * * 8",
            "day_of_week",
            &["day-of-week: 8 is out of range 0-7"],
        );
        assert_err("0 0-99 * * *", "hour", &["99 is out of range 0-23"]);
        assert_err(
            "99999999999999999999 * * * *",
            "minute",
            &["99999999999999999999 is out of range 0-59"],
        );
    }

    #[test]
    fn bad_steps_are_rejected() {
        assert_err(
            "*/0 * * * *",
            "minute",
            &["minute: step 0 in \"*/0\" must be at least 1"],
        );
        assert_err("0 1-5/0 * * *", "hour", &["step 0"]);
        assert_err(
            "*/x * * * *",
            "minute",
            &["step \"x\" in \"*/x\" is not a number"],
        );
        assert_err("*/ * * * *", "minute", &["step is missing in \"*/\""]);
        assert_err(
            "1/2/3 * * * *",
            "minute",
            &["\"1/2/3\" has more than one step"],
        );
        assert_err("0 0 * * MON/TUE", "day_of_week", &["step \"TUE\""]);
    }

    #[test]
    fn reversed_ranges_are_rejected() {
        assert_err(
            "0 22-2 * * *",
            "hour",
            &["hour: range 22-2 is reversed", "22-23,0-2"],
        );
        assert_err(
            "0 0 * * FRI-MON",
            "day_of_week",
            &["range 5-1 is reversed", "5-6,0-1"],
        );
        assert_err("0 0 * NOV-FEB * ", "month", &["range 11-2 is reversed"]);
    }

    #[test]
    fn empty_items_and_malformed_ranges_are_rejected() {
        assert_err(
            "1,,2 * * * *",
            "minute",
            &["minute: empty item in list \"1,,2\""],
        );
        assert_err("1, * * * *", "minute", &["empty item in list \"1,\""]);
        assert_err("0 ,5 * * *", "hour", &["empty item in list \",5\""]);
        assert_err(
            "-5 * * * *",
            "minute",
            &["range \"-5\" is missing its start"],
        );
        assert_err("5- * * * *", "minute", &["range \"5-\" is missing its end"]);
        assert_err("1-2-3 * * * *", "minute", &["\"2-3\" is not a number"]);
        assert_err("/5 * * * *", "minute", &["missing value in \"/5\""]);
    }

    #[test]
    fn unknown_tokens_are_rejected() {
        assert_err("x * * * *", "minute", &["minute: \"x\" is not a number"]);
        assert_err("0 0 ? * *", "day_of_month", &["\"?\" is not a number"]);
        assert_err("0 0 L * *", "day_of_month", &["\"L\" is not a number"]);
        assert_err(
            "0 0 * FOO *",
            "month",
            &["\"FOO\" is not a number or a month name (JAN-DEC)"],
        );
        assert_err(
            "0 0 * MON *",
            "month",
            &["\"MON\" is not a number or a month name"],
        );
        assert_err(
            "0 0 * * JAN",
            "day_of_week",
            &["\"JAN\" is not a number or a day name (SUN-SAT)"],
        );
        assert_err("0 0 * * MONDAY", "day_of_week", &["\"MONDAY\""]);
        assert_err("MON 0 * * *", "minute", &["\"MON\" is not a number"]);
        assert_err("0 0 * * 1#2", "day_of_week", &["\"1#2\""]);
        assert_err("+5 * * * *", "minute", &["\"+5\" is not a number"]);
    }

    #[test]
    fn expressions_that_never_fire_are_rejected() {
        assert_err(
            "0 0 30 2 *",
            "day_of_month",
            &["can never fire", "day 30 does not occur in February"],
        );
        assert_err(
            "0 0 31 4,6,9,11 *",
            "day_of_month",
            &["day 31 does not occur in April, June, September, November"],
        );
        assert_err(
            "0 0 30,31 FEB *",
            "day_of_month",
            &["days 30,31 do not occur in February"],
        );
        assert_err("0 0 31 2 */2", "day_of_month", &["never fire"]);
        // Possible, if rarely.
        cron("0 0 29 2 *");
        cron("0 0 31 4,5 *");
        // With both day fields restricted, the weekday alone makes it fire.
        cron("0 0 30 2 MON");
    }

    // ---- next_after in UTC ----

    #[test]
    fn next_minute_is_strictly_after() {
        assert_eq!(
            next("* * * * *", "2025-06-01T10:00:30Z", "UTC"),
            "2025-06-01T10:01:00Z"
        );
        assert_eq!(
            next("* * * * *", "2025-06-01T10:01:00Z", "UTC"),
            "2025-06-01T10:02:00Z"
        );
        let just_before = Timestamp(at("2025-06-01T10:01:00Z").0 - 1);
        let t = cron("* * * * *").next_after(just_before, &Zone::utc());
        assert_eq!(t, Some(at("2025-06-01T10:01:00Z")));
        assert_eq!(
            next("* * * * *", "2025-06-01T10:00:59.999999Z", "UTC"),
            "2025-06-01T10:01:00Z"
        );
    }

    #[test]
    fn crosses_hour_day_month_and_year_boundaries() {
        assert_eq!(
            next("*/15 * * * *", "2025-06-01T10:50:00Z", "UTC"),
            "2025-06-01T11:00:00Z"
        );
        assert_eq!(
            next("45 * * * *", "2025-06-01T10:45:00Z", "UTC"),
            "2025-06-01T11:45:00Z"
        );
        assert_eq!(
            next("30 23 * * *", "2025-06-01T23:30:00Z", "UTC"),
            "2025-06-02T23:30:00Z"
        );
        assert_eq!(
            next("0 0 * * *", "2025-06-30T12:00:00Z", "UTC"),
            "2025-07-01T00:00:00Z"
        );
        assert_eq!(
            next("0 0 1 * *", "2025-12-31T23:59:59Z", "UTC"),
            "2026-01-01T00:00:00Z"
        );
        assert_eq!(
            next("59 23 31 12 *", "2025-01-01T00:00:00Z", "UTC"),
            "2025-12-31T23:59:00Z"
        );
    }

    #[test]
    fn month_ends() {
        // Day 31 skips the 30-day months and February.
        assert_eq!(
            fires(
                "0 0 31 * *",
                "UTC",
                "2025-01-01T00:00:00Z",
                "2026-01-01T00:00:00Z"
            ),
            [
                "2025-01-31T00:00:00Z",
                "2025-03-31T00:00:00Z",
                "2025-05-31T00:00:00Z",
                "2025-07-31T00:00:00Z",
                "2025-08-31T00:00:00Z",
                "2025-10-31T00:00:00Z",
                "2025-12-31T00:00:00Z",
            ]
        );
        assert_eq!(
            next("0 12 30 * *", "2025-01-30T12:00:00Z", "UTC"),
            "2025-03-30T12:00:00Z"
        );
        assert_eq!(
            next("0 0 31 4,5 *", "2025-01-01T00:00:00Z", "UTC"),
            "2025-05-31T00:00:00Z"
        );
    }

    #[test]
    fn leap_years() {
        assert_eq!(
            fires(
                "0 12 29 2 *",
                "UTC",
                "2023-01-01T00:00:00Z",
                "2033-01-01T00:00:00Z"
            ),
            [
                "2024-02-29T12:00:00Z",
                "2028-02-29T12:00:00Z",
                "2032-02-29T12:00:00Z",
            ]
        );
        // 2100 is not a leap year; 2000 was.
        assert_eq!(
            next("0 0 29 2 *", "2097-01-01T00:00:00Z", "UTC"),
            "2104-02-29T00:00:00Z"
        );
        assert_eq!(
            next("0 0 29 2 *", "1999-01-01T00:00:00Z", "UTC"),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(
            next("0 0 * 2 *", "2024-02-28T00:00:00Z", "UTC"),
            "2024-02-29T00:00:00Z"
        );
        assert_eq!(
            next("0 0 * 2 *", "2025-02-28T00:00:00Z", "UTC"),
            "2026-02-01T00:00:00Z"
        );
    }

    #[test]
    fn day_of_month_or_day_of_week_when_both_restricted() {
        // June 2025: Fridays are 6, 13, 20, 27; the 13th is one of them.
        assert_eq!(
            fires(
                "0 0 13 * FRI",
                "UTC",
                "2025-06-01T00:00:00Z",
                "2025-07-01T00:00:00Z"
            ),
            [
                "2025-06-06T00:00:00Z",
                "2025-06-13T00:00:00Z",
                "2025-06-20T00:00:00Z",
                "2025-06-27T00:00:00Z",
            ]
        );
        // July 2025: Mondays 7, 14, 21, 28 or the 1st and the 15th.
        assert_eq!(
            fires(
                "0 8 1,15 * 1",
                "UTC",
                "2025-07-01T00:00:00Z",
                "2025-08-01T00:00:00Z"
            ),
            [
                "2025-07-01T08:00:00Z",
                "2025-07-07T08:00:00Z",
                "2025-07-14T08:00:00Z",
                "2025-07-15T08:00:00Z",
                "2025-07-21T08:00:00Z",
                "2025-07-28T08:00:00Z",
            ]
        );
    }

    #[test]
    fn day_of_month_and_day_of_week_when_one_is_star() {
        assert_eq!(
            fires(
                "0 0 * * MON",
                "UTC",
                "2025-07-01T00:00:00Z",
                "2025-08-01T00:00:00Z"
            ),
            [
                "2025-07-07T00:00:00Z",
                "2025-07-14T00:00:00Z",
                "2025-07-21T00:00:00Z",
                "2025-07-28T00:00:00Z",
            ]
        );
        assert_eq!(
            fires(
                "0 0 1-3 * *",
                "UTC",
                "2025-07-01T00:00:00Z",
                "2025-08-01T00:00:00Z"
            ),
            [
                "2025-07-01T00:00:00Z",
                "2025-07-02T00:00:00Z",
                "2025-07-03T00:00:00Z",
            ]
        );
        // Vixie: `*/2` counts as unrestricted, so both must match (odd days that are
        // Mondays): in 2025 that is 2025-09-01 first after July.
        assert_eq!(
            fires(
                "0 0 */2 * MON",
                "UTC",
                "2025-07-01T00:00:00Z",
                "2025-10-01T00:00:00Z"
            ),
            [
                "2025-07-07T00:00:00Z",
                "2025-07-21T00:00:00Z",
                "2025-08-11T00:00:00Z",
                "2025-08-25T00:00:00Z",
                "2025-09-01T00:00:00Z",
                "2025-09-15T00:00:00Z",
                "2025-09-29T00:00:00Z",
            ]
        );
    }

    #[test]
    fn macros_fire_when_expected() {
        let after = "2025-05-05T05:05:00Z";
        assert_eq!(next("@yearly", after, "UTC"), "2026-01-01T00:00:00Z");
        assert_eq!(next("@annually", after, "UTC"), "2026-01-01T00:00:00Z");
        assert_eq!(next("@monthly", after, "UTC"), "2025-06-01T00:00:00Z");
        // 2025-05-05 is a Monday.
        assert_eq!(next("@weekly", after, "UTC"), "2025-05-11T00:00:00Z");
        assert_eq!(next("@daily", after, "UTC"), "2025-05-06T00:00:00Z");
        assert_eq!(next("@midnight", after, "UTC"), "2025-05-06T00:00:00Z");
        assert_eq!(next("@hourly", after, "UTC"), "2025-05-05T06:00:00Z");
    }

    #[test]
    fn weekdays_in_2025_in_berlin_fire_261_times() {
        let all = fires(
            "0 9 * * MON-FRI",
            "Europe/Berlin",
            "2025-01-01T00:00:00+01:00",
            "2026-01-01T00:00:00+01:00",
        );
        assert_eq!(all.len(), 261);
        assert_eq!(all[0], "2025-01-01T08:00:00Z");
        assert_eq!(all[260], "2025-12-31T08:00:00Z");
        // Summer time: 09:00 CEST is 07:00Z.
        assert!(all.contains(&"2025-07-01T07:00:00Z".to_string()));
    }

    // ---- time zones ----

    #[test]
    fn daily_job_in_several_zones() {
        let cases = [
            ("UTC", "2025-01-15T09:00:00Z", "2025-07-15T09:00:00Z"),
            (
                "America/New_York",
                "2025-01-15T14:00:00Z",
                "2025-07-15T13:00:00Z",
            ),
            (
                "Europe/Berlin",
                "2025-01-15T08:00:00Z",
                "2025-07-15T07:00:00Z",
            ),
            (
                "Asia/Kolkata",
                "2025-01-15T03:30:00Z",
                "2025-07-15T03:30:00Z",
            ),
            // Lord Howe: +11 in (southern) summer, +10:30 in winter; 09:00 local is
            // the previous UTC day.
            (
                "Australia/Lord_Howe",
                "2025-01-14T22:00:00Z",
                "2025-07-14T22:30:00Z",
            ),
        ];
        for (name, january, july) in cases {
            assert_eq!(
                next("0 9 * * *", "2025-01-14T20:00:00Z", name),
                january,
                "{name}"
            );
            assert_eq!(
                next("0 9 * * *", "2025-07-14T20:00:00Z", name),
                july,
                "{name}"
            );
        }
    }

    #[test]
    fn spring_forward_gap_shifts_by_the_gap() {
        // America/New_York 2025-03-09: 02:00 EST -> 03:00 EDT (07:00Z).
        assert_eq!(
            fires(
                "30 2 * * *",
                "America/New_York",
                "2025-03-08T00:00:00Z",
                "2025-03-11T00:00:00Z"
            ),
            [
                "2025-03-08T07:30:00Z", // 02:30 EST
                "2025-03-09T07:30:00Z", // 02:30 does not exist: 03:30 EDT
                "2025-03-10T06:30:00Z", // 02:30 EDT
            ]
        );
        // Asked from inside the gap's shifted hour it still fires.
        assert_eq!(
            next("30 2 * * *", "2025-03-09T07:10:00Z", "America/New_York"),
            "2025-03-09T07:30:00Z"
        );
        // A shifted fire that coincides with a regular one fires once.
        assert_eq!(
            fires(
                "30 2,3 * * *",
                "America/New_York",
                "2025-03-09T05:00:00Z",
                "2025-03-09T12:00:00Z"
            ),
            ["2025-03-09T07:30:00Z"]
        );
        assert_eq!(
            fires(
                "*/30 * * * *",
                "America/New_York",
                "2025-03-09T06:00:00Z",
                "2025-03-09T08:01:00Z"
            ),
            [
                "2025-03-09T06:00:00Z", // 01:00 EST
                "2025-03-09T06:30:00Z", // 01:30 EST
                "2025-03-09T07:00:00Z", // 02:00 -> 03:00 EDT, also 03:00 itself
                "2025-03-09T07:30:00Z", // 02:30 -> 03:30 EDT, also 03:30 itself
                "2025-03-09T08:00:00Z", // 04:00 EDT
            ]
        );
        // A 03:00 job is unaffected; results stay ordered across the gap.
        assert_eq!(
            fires(
                "0 3 * * *",
                "America/New_York",
                "2025-03-08T00:00:00Z",
                "2025-03-11T00:00:00Z"
            ),
            [
                "2025-03-08T08:00:00Z",
                "2025-03-09T07:00:00Z",
                "2025-03-10T07:00:00Z",
            ]
        );
    }

    #[test]
    fn fall_back_overlap_fires_once_unless_hour_is_star() {
        // America/New_York 2025-11-02: 02:00 EDT -> 01:00 EST (06:00Z); 01:00-01:59
        // happens twice.
        assert_eq!(
            fires(
                "30 1 * * *",
                "America/New_York",
                "2025-11-01T00:00:00Z",
                "2025-11-04T00:00:00Z"
            ),
            [
                "2025-11-01T05:30:00Z", // 01:30 EDT
                "2025-11-02T05:30:00Z", // first 01:30 (EDT) only
                "2025-11-03T06:30:00Z", // 01:30 EST
            ]
        );
        // Asked from inside the repeated hour, the second 01:30 is skipped.
        assert_eq!(
            next("30 1 * * *", "2025-11-02T06:10:00Z", "America/New_York"),
            "2025-11-03T06:30:00Z"
        );
        assert_eq!(
            fires(
                "*/30 * * * *",
                "America/New_York",
                "2025-11-02T04:30:00Z",
                "2025-11-02T07:01:00Z"
            ),
            [
                "2025-11-02T04:30:00Z", // 00:30 EDT
                "2025-11-02T05:00:00Z", // 01:00 EDT
                "2025-11-02T05:30:00Z", // 01:30 EDT
                "2025-11-02T06:00:00Z", // 01:00 EST
                "2025-11-02T06:30:00Z", // 01:30 EST
                "2025-11-02T07:00:00Z", // 02:00 EST
            ]
        );
        assert_eq!(
            fires(
                "0 * * * *",
                "America/New_York",
                "2025-11-02T04:00:00Z",
                "2025-11-02T08:00:00Z"
            ),
            [
                "2025-11-02T04:00:00Z",
                "2025-11-02T05:00:00Z",
                "2025-11-02T06:00:00Z",
                "2025-11-02T07:00:00Z",
            ]
        );
        // `*/1` is not `*`: the repeated hour fires once.
        assert_eq!(
            fires(
                "0 */1 * * *",
                "America/New_York",
                "2025-11-02T04:00:00Z",
                "2025-11-02T08:00:00Z"
            ),
            [
                "2025-11-02T04:00:00Z",
                "2025-11-02T05:00:00Z",
                "2025-11-02T07:00:00Z",
            ]
        );
    }

    #[test]
    fn lord_howe_half_hour_transitions() {
        // 2025-10-05 02:00 +10:30 -> 02:30 +11 (15:30Z on the 4th).
        assert_eq!(
            next("15 2 * * *", "2025-10-04T12:00:00Z", "Australia/Lord_Howe"),
            "2025-10-04T15:45:00Z" // 02:45 +11
        );
        // 2025-04-06 02:00 +11 -> 01:30 +10:30 (15:00Z on the 5th).
        assert_eq!(
            fires(
                "45 1 * * *",
                "Australia/Lord_Howe",
                "2025-04-05T12:00:00Z",
                "2025-04-06T12:00:00Z"
            ),
            ["2025-04-05T14:45:00Z"]
        );
        assert_eq!(
            fires(
                "*/15 * * * *",
                "Australia/Lord_Howe",
                "2025-04-05T14:30:00Z",
                "2025-04-05T15:31:00Z"
            ),
            [
                "2025-04-05T14:30:00Z", // 01:30 +11
                "2025-04-05T14:45:00Z", // 01:45 +11
                "2025-04-05T15:00:00Z", // 01:30 +10:30
                "2025-04-05T15:15:00Z", // 01:45 +10:30
                "2025-04-05T15:30:00Z", // 02:00 +10:30
            ]
        );
    }

    #[test]
    fn a_year_of_half_hours_in_new_york_strictly_increases() {
        let all = fires(
            "*/30 * * * *",
            "America/New_York",
            "2025-01-01T05:00:00Z",
            "2026-01-01T05:00:00Z",
        );
        // 365 days of 48, minus the two gap slots that merge with 03:00 and 03:30,
        // plus the two repeated slots at 01:00 and 01:30.
        assert_eq!(all.len(), 365 * 48);
        for name in ["30 1 * * *", "30 2 * * *", "0 0 * * *"] {
            let n = fires(
                name,
                "America/New_York",
                "2025-01-01T05:00:00Z",
                "2026-01-01T05:00:00Z",
            );
            assert_eq!(n.len(), 365, "{name}");
        }
    }

    #[test]
    fn sparse_schedules_and_the_search_horizon() {
        // 29 February on a Sunday (the weekday field starts with `*`, so both must
        // match): 2032, then 2060, which is beyond the ten-year horizon.
        let c = cron("0 0 29 2 */7");
        let berlin = zone("Europe/Berlin");
        assert_eq!(
            c.next_after(at("2025-01-01T00:00:00Z"), &berlin).map(show),
            Some("2032-02-28T23:00:00Z".to_string())
        );
        assert_eq!(c.next_after(at("2033-01-01T00:00:00Z"), &berlin), None);
        // Extreme inputs do not panic.
        assert_eq!(
            cron("* * * * *").next_after(Timestamp(i64::MAX), &berlin),
            None
        );
        assert_eq!(
            cron("* * * * *").next_after(Timestamp(i64::MIN), &berlin),
            None
        );
        assert_eq!(
            cron("0 0 1 1 *").next_after(at("1969-12-31T12:00:00Z"), &Zone::utc()),
            Some(at("1970-01-01T00:00:00Z"))
        );
    }

    #[test]
    fn next_after_is_fast() {
        // Not a benchmark: a guard against accidental minute-by-minute scans.
        let c = cron("0 0 29 2 *");
        let z = zone("America/New_York");
        let start = std::time::Instant::now();
        let mut t = at("2025-01-01T00:00:00Z");
        for _ in 0..200 {
            t = c.next_after(t, &z).unwrap();
        }
        assert_eq!(show(t), "2848-02-29T05:00:00Z");
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
    }

    // ---- zones ----

    #[test]
    fn zone_parse_accepts_iana_names_and_utc() {
        assert_eq!(Zone::utc().name(), "UTC");
        assert_eq!(zone("UTC").name(), "UTC");
        assert_eq!(zone("Europe/Berlin").name(), "Europe/Berlin");
        assert_eq!(zone("america/new_york").name(), "America/New_York");
        assert_eq!(zone("Asia/Kolkata").name(), "Asia/Kolkata");
        assert_eq!(zone("Australia/Lord_Howe").name(), "Australia/Lord_Howe");
    }

    #[test]
    fn zone_parse_errors_name_the_problem() {
        let e = Zone::parse("Mars/Base").unwrap_err();
        assert!(e.starts_with("unknown time zone \"Mars/Base\""), "{e}");
        assert!(e.contains("Europe/Berlin"), "{e}");
        assert_eq!(Zone::parse("").unwrap_err(), "time zone name is empty");
        assert_eq!(Zone::parse("  ").unwrap_err(), "time zone name is empty");
        for bad in [
            "Etc/Unknown",
            "+05:00",
            "EST5EDT,M3.2.0,M11.1.0",
            "../../etc/passwd",
            " UTC",
        ] {
            let e = Zone::parse(bad).unwrap_err();
            assert!(e.starts_with("unknown time zone"), "{bad}: {e}");
        }
    }
}
