//! A strict little parser of the Prometheus text exposition (0.0.4), for round-trip tests:
//! every line must parse, label values are unescaped, and each series appears once.

use std::collections::{BTreeMap, HashSet};

/// One parsed sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Parses a whole exposition; panics with the offending line on any error.
pub fn parse(text: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut seen = HashSet::new();
    let mut typed = HashSet::new();
    for (n, line) in text.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let kind = parts.next().unwrap();
            let name = parts
                .next()
                .unwrap_or_else(|| panic!("line {}: {line}", n + 1));
            if kind == "TYPE" {
                assert!(
                    typed.insert(name.to_owned()),
                    "line {}: family typed twice",
                    n + 1
                );
            }
            continue;
        }
        let sample = parse_sample(line).unwrap_or_else(|e| panic!("line {}: {e}: {line}", n + 1));
        assert!(
            typed
                .iter()
                .any(|f| sample.name == *f || sample.name.starts_with(&format!("{f}_"))),
            "line {}: sample before its TYPE: {line}",
            n + 1
        );
        let key = format!("{}{:?}", sample.name, sample.labels);
        assert!(seen.insert(key), "line {}: duplicate series {line}", n + 1);
        samples.push(sample);
    }
    samples
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ']).ok_or("no value")?;
    let name = &line[..name_end];
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    {
        return Err(format!("bad metric name {name:?}"));
    }
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(after) = rest.strip_prefix('{') {
        let mut chars = after.char_indices().peekable();
        let end = loop {
            let (start, c) = chars.next().ok_or("unterminated labels")?;
            if c == '}' {
                break start;
            }
            if c == ',' {
                continue;
            }
            let eq = after[start..].find("=\"").ok_or("label without =\"")? + start;
            let lname = &after[start..eq];
            while let Some((i, _)) = chars.peek() {
                if *i > eq + 1 {
                    break;
                }
                chars.next();
            }
            let mut value = String::new();
            loop {
                let (_, c) = chars.next().ok_or("unterminated label value")?;
                match c {
                    '"' => break,
                    '\\' => match chars.next().ok_or("dangling escape")?.1 {
                        '\\' => value.push('\\'),
                        '"' => value.push('"'),
                        'n' => value.push('\n'),
                        other => return Err(format!("bad escape \\{other}")),
                    },
                    '\n' => return Err("raw newline in label value".into()),
                    c => value.push(c),
                }
            }
            if labels.insert(lname.to_owned(), value).is_some() {
                return Err(format!("label {lname} twice"));
            }
        };
        rest = &after[end + 1..];
    }
    let value_text = rest.strip_prefix(' ').ok_or("no space before value")?;
    if value_text.contains(' ') {
        return Err("timestamps are not expected".into());
    }
    let value = match value_text {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().map_err(|e| format!("bad value {v:?}: {e}"))?,
    };
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}
