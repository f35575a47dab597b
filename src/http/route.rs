//! `google.api.http` path templates: parsing (once, at start-up) and matching.
//!
//! ```text
//! Template = "/" Segments [ Verb ] ;
//! Segments = Segment { "/" Segment } ;
//! Segment  = "*" | "**" | LITERAL | Variable ;
//! Variable = "{" FieldPath [ "=" Segments ] "}" ;
//! FieldPath = IDENT { "." IDENT } ;
//! Verb     = ":" LITERAL ;
//! ```
//!
//! `{name}` means `{name=*}`; `{name=sessions/*}` captures the matched segments joined by
//! `/` (`sessions/abc`). `**` matches the rest of the path and must come last.

use std::fmt;

/// One segment of a compiled template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    /// `*`: exactly one non-empty segment.
    Single,
    /// `**`: zero or more segments, the rest of the path.
    Multi,
}

/// A variable of a template, bound to a run of segments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variable {
    /// The dotted field path, e.g. `["session", "name"]`.
    pub field_path: Vec<String>,
    /// First segment index (inclusive).
    pub start: usize,
    /// End segment index (exclusive); `None` when the variable ends with `**`.
    pub end: Option<usize>,
}

/// A parsed path template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathTemplate {
    pub segments: Vec<Segment>,
    pub variables: Vec<Variable>,
    pub verb: Option<String>,
    /// Literal segments plus the verb, counted once.
    specificity: usize,
    source: String,
}

impl fmt::Display for PathTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl PathTemplate {
    /// Parses a template such as `/v1/{name=sessions/*/turns/*}:cancel`.
    pub fn parse(template: &str) -> Result<Self, String> {
        let err = |what: &str| format!("invalid path template {template:?}: {what}");
        let Some(rest) = template.strip_prefix('/') else {
            return Err(err("must start with '/'"));
        };

        // The verb is a ':' outside braces; everything after it is the verb.
        let mut depth = 0usize;
        let mut verb_at = None;
        for (i, c) in rest.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth = depth.checked_sub(1).ok_or_else(|| err("unbalanced '}'"))?,
                ':' if depth == 0 => {
                    verb_at = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let (body, verb) = match verb_at {
            Some(i) => {
                let verb = &rest[i + 1..];
                if verb.is_empty() || verb.contains(['/', '{', '}', '*', ':']) {
                    return Err(err("bad verb"));
                }
                (&rest[..i], Some(verb.to_owned()))
            }
            None => (rest, None),
        };

        let mut segments = Vec::new();
        let mut variables = Vec::new();
        let mut chars = body;
        loop {
            if let Some(inner) = chars.strip_prefix('{') {
                let close = inner.find('}').ok_or_else(|| err("unclosed '{'"))?;
                let spec = &inner[..close];
                if spec.contains('{') {
                    return Err(err("nested variables"));
                }
                let (path, sub) = match spec.split_once('=') {
                    Some((path, sub)) => (path, sub),
                    None => (spec, "*"),
                };
                let field_path: Vec<String> = path.split('.').map(str::to_owned).collect();
                if field_path.iter().any(|p| !is_ident(p)) {
                    return Err(err(&format!("bad field path {path:?}")));
                }
                let start = segments.len();
                for part in sub.split('/') {
                    segments.push(parse_plain_segment(part).map_err(|e| err(&e))?);
                }
                let end = if segments.last() == Some(&Segment::Multi) {
                    None
                } else {
                    Some(segments.len())
                };
                variables.push(Variable {
                    field_path,
                    start,
                    end,
                });
                chars = &inner[close + 1..];
            } else {
                let end = chars.find('/').unwrap_or(chars.len());
                segments.push(parse_plain_segment(&chars[..end]).map_err(|e| err(&e))?);
                chars = &chars[end..];
            }
            if chars.is_empty() {
                break;
            }
            chars = chars
                .strip_prefix('/')
                .ok_or_else(|| err("a variable must be a whole segment"))?;
        }

        if let Some(pos) = segments.iter().position(|s| *s == Segment::Multi)
            && pos + 1 != segments.len()
        {
            return Err(err("'**' must be the last segment"));
        }
        for (i, a) in variables.iter().enumerate() {
            if variables[..i].iter().any(|b| b.field_path == a.field_path) {
                return Err(err("a field is bound twice"));
            }
        }

        let specificity = segments
            .iter()
            .filter(|s| matches!(s, Segment::Literal(_)))
            .count()
            + usize::from(verb.is_some());
        Ok(Self {
            segments,
            variables,
            verb,
            specificity,
            source: template.to_owned(),
        })
    }

    /// Literal segments plus the verb: the more, the more specific the template.
    pub fn specificity(&self) -> usize {
        self.specificity
    }

    /// Matches decoded path segments (the verb already split off); on success returns
    /// each variable's captured value, in `variables` order.
    pub fn matches(&self, segments: &[String], verb: Option<&str>) -> Option<Vec<String>> {
        if self.verb.as_deref() != verb {
            return None;
        }
        let multi = self.segments.last() == Some(&Segment::Multi);
        let fixed = self.segments.len() - usize::from(multi);
        if segments.len() < fixed || (!multi && segments.len() != fixed) {
            return None;
        }
        for (template, actual) in self.segments[..fixed].iter().zip(segments) {
            match template {
                Segment::Literal(literal) if literal != actual => return None,
                Segment::Single if actual.is_empty() => return None,
                _ => {}
            }
        }
        Some(
            self.variables
                .iter()
                .map(|v| segments[v.start..v.end.unwrap_or(segments.len())].join("/"))
                .collect(),
        )
    }
}

fn parse_plain_segment(part: &str) -> Result<Segment, String> {
    match part {
        "*" => Ok(Segment::Single),
        "**" => Ok(Segment::Multi),
        "" => Err("empty segment".into()),
        literal if literal.contains(['{', '}', '*', '=']) => {
            Err(format!("bad literal segment {literal:?}"))
        }
        literal => Ok(Segment::Literal(literal.to_owned())),
    }
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A request path split for matching: decoded segments, plus (when the last segment has
/// a ':') the variant with the verb split off.
#[derive(Debug)]
pub struct SplitPath {
    pub segments: Vec<String>,
    pub with_verb: Option<(Vec<String>, String)>,
}

impl SplitPath {
    /// Splits and percent-decodes `path`; the verb is split at the last ':' of the last
    /// raw segment (so an encoded `%3A` never starts a verb).
    pub fn new(path: &str) -> Result<Self, String> {
        let rest = path
            .strip_prefix('/')
            .ok_or_else(|| "the path must start with '/'".to_owned())?;
        let raw: Vec<&str> = rest.split('/').collect();
        let segments = raw
            .iter()
            .map(|s| percent_decode(s, false))
            .collect::<Result<Vec<_>, _>>()?;
        let with_verb = match raw.split_last() {
            Some((last, init)) => match last.rsplit_once(':') {
                Some((seg, verb)) => {
                    let mut segs = init
                        .iter()
                        .map(|s| percent_decode(s, false))
                        .collect::<Result<Vec<_>, _>>()?;
                    segs.push(percent_decode(seg, false)?);
                    Some((segs, percent_decode(verb, false)?))
                }
                None => None,
            },
            None => None,
        };
        Ok(Self {
            segments,
            with_verb,
        })
    }
}

/// Percent-decodes `s` (and `+` as space when `plus_is_space`, for query strings).
pub fn percent_decode(s: &str, plus_is_space: bool) -> Result<String, String> {
    if !(s.contains('%') || plus_is_space && s.contains('+')) {
        return Ok(s.to_owned());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("bad percent-encoding in {s:?}"))?;
                out.push(hex);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| format!("percent-decoded {s:?} is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(path: &str) -> Vec<String> {
        SplitPath::new(path).expect("split").segments
    }

    #[test]
    fn parses_literals_and_variables() {
        let t = PathTemplate::parse("/v1/{name=sessions/*}").expect("parse");
        assert_eq!(
            t.segments,
            vec![
                Segment::Literal("v1".into()),
                Segment::Literal("sessions".into()),
                Segment::Single
            ]
        );
        assert_eq!(
            t.variables,
            vec![Variable {
                field_path: vec!["name".into()],
                start: 1,
                end: Some(3)
            }]
        );
        assert_eq!(t.verb, None);
        assert_eq!(t.specificity(), 2);
    }

    #[test]
    fn parses_nested_field_path() {
        let t = PathTemplate::parse("/v1/{session.name=sessions/*}").expect("parse");
        assert_eq!(t.variables[0].field_path, vec!["session", "name"]);
        let caps = t.matches(&segs("/v1/sessions/abc"), None).expect("match");
        assert_eq!(caps, vec!["sessions/abc"]);
        assert!(t.matches(&segs("/v1/models/abc"), None).is_none());
        assert!(t.matches(&segs("/v1/sessions/abc/x"), None).is_none());
        assert!(
            t.matches(&segs("/v1/sessions/"), None).is_none(),
            "* needs a non-empty segment"
        );
    }

    #[test]
    fn bare_variable_is_single_segment() {
        let t = PathTemplate::parse("/v1/things/{id}").expect("parse");
        assert_eq!(t.variables[0].start, 2);
        assert_eq!(t.variables[0].end, Some(3));
        assert_eq!(
            t.matches(&segs("/v1/things/42"), None),
            Some(vec!["42".to_owned()])
        );
        assert!(t.matches(&segs("/v1/things/42/43"), None).is_none());
    }

    #[test]
    fn verbs_are_split_and_must_match() {
        let t = PathTemplate::parse("/v1/{name=sessions/*/turns/*}:cancel").expect("parse");
        assert_eq!(t.verb.as_deref(), Some("cancel"));
        assert_eq!(t.specificity(), 4);
        let split = SplitPath::new("/v1/sessions/s1/turns/t1:cancel").expect("split");
        let (segments, verb) = split.with_verb.expect("has verb");
        assert_eq!(verb, "cancel");
        assert_eq!(
            t.matches(&segments, Some(&verb)),
            Some(vec!["sessions/s1/turns/t1".to_owned()])
        );
        assert!(t.matches(&segments, Some("respond")).is_none());
        assert!(t.matches(&split.segments, None).is_none());

        let watch = PathTemplate::parse("/v1/sessions:watch").expect("parse");
        let split = SplitPath::new("/v1/sessions:watch").expect("split");
        let (segments, verb) = split.with_verb.expect("has verb");
        assert_eq!(watch.matches(&segments, Some(&verb)), Some(vec![]));
        let clear = PathTemplate::parse("/v1/{session=sessions/*}:clearQueue").expect("parse");
        let split = SplitPath::new("/v1/sessions/a:b:clearQueue").expect("split");
        let (segments, verb) = split.with_verb.expect("has verb");
        assert_eq!(
            clear.matches(&segments, Some(&verb)),
            Some(vec!["sessions/a:b".to_owned()]),
            "the verb is split at the last ':'"
        );
    }

    #[test]
    fn double_star_takes_the_rest() {
        let t = PathTemplate::parse("/v1/{path=files/**}").expect("parse");
        assert_eq!(t.variables[0].end, None);
        assert_eq!(
            t.matches(&segs("/v1/files/a/b/c"), None),
            Some(vec!["files/a/b/c".to_owned()])
        );
        assert_eq!(
            t.matches(&segs("/v1/files"), None),
            Some(vec!["files".to_owned()])
        );
        let t = PathTemplate::parse("/v1/**").expect("parse");
        assert!(t.matches(&segs("/v1/x/y"), None).is_some());
        assert!(t.matches(&segs("/v2/x"), None).is_none());
        assert!(PathTemplate::parse("/v1/**/x").is_err());
    }

    #[test]
    fn rejects_bad_templates() {
        for bad in [
            "v1/x",
            "/v1/{name",
            "/v1/{na-me}",
            "/v1/x:",
            "/v1//x",
            "/v1/{a}/{a}",
            "/v1/pre{name}",
        ] {
            assert!(PathTemplate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn decodes_segments() {
        let split = SplitPath::new("/v1/sessions/a%20b%3Ac").expect("split");
        assert_eq!(split.segments, vec!["v1", "sessions", "a b:c"]);
        assert!(split.with_verb.is_none(), "an encoded ':' is not a verb");
        assert!(SplitPath::new("/v1/%zz").is_err());
        assert_eq!(percent_decode("a+b%2B", true).expect("decode"), "a b+");
        assert_eq!(percent_decode("a+b", false).expect("decode"), "a+b");
    }
}
