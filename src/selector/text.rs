//! The selector's text syntax, for query strings and the command line:
//! `model=SIM-1,SIM-2 version=1.0 tag.ring=canary group=lab manufacturer=Acme hw=rev2 id=IMEI:1234`.
//!
//! Terms are separated by whitespace; a term is `field=values`, the values separated by
//! commas. Fields: `manufacturer`, `model`, `version`, `hw`, `tag.<key>` (one value), `group`,
//! `id`. A field given twice adds its values (`model=A model=B` is `model=A,B`); a tag key
//! given twice is an error. A value holding whitespace, `,`, `=`, `"` or `\` is written in
//! double quotes, where `\"` and `\\` stand for `"` and `\`. Parsing validates the result, so
//! the text of a valid selector ([`std::fmt::Display`]) parses back to the same selector.

use std::fmt;
use std::str::FromStr;

use super::{Selector, SelectorError};

/// Why a selector's text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// `at` counts characters from 1.
    #[error("selector text, character {at}: {message}")]
    Syntax { at: usize, message: String },
    #[error(transparent)]
    Invalid(#[from] SelectorError),
}

const FIELDS: &str = "manufacturer, model, version, hw, tag.<key>, group or id";

enum Field {
    Manufacturer,
    Model,
    Version,
    Hardware,
    Tag(String),
    Group,
    Id,
}

struct Parser {
    chars: Vec<char>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn error<T>(&self, at: usize, message: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError::Syntax {
            at: at + 1,
            message: message.into(),
        })
    }

    fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.at += 1;
        }
    }

    fn field(&mut self) -> Result<Field, ParseError> {
        let start = self.at;
        while self.peek().is_some_and(|c| c != '=' && !c.is_whitespace()) {
            self.at += 1;
        }
        let name: String = self.chars[start..self.at].iter().collect();
        if self.peek() != Some('=') {
            return self.error(self.at, format!("expected `=` after `{name}`"));
        }
        self.at += 1;
        Ok(match name.as_str() {
            "manufacturer" => Field::Manufacturer,
            "model" => Field::Model,
            "version" => Field::Version,
            "hw" => Field::Hardware,
            "group" => Field::Group,
            "id" => Field::Id,
            _ => match name.strip_prefix("tag.") {
                Some(key) => Field::Tag(key.to_owned()),
                None => {
                    return self
                        .error(start, format!("unknown field `{name}` (expected {FIELDS})"));
                }
            },
        })
    }

    /// One value, bare or quoted, and the separator after it: `true` when a comma follows.
    fn value(&mut self) -> Result<(String, bool), ParseError> {
        let start = self.at;
        let mut value = String::new();
        if self.peek() == Some('"') {
            self.at += 1;
            loop {
                match self.peek() {
                    None => return self.error(start, "unterminated quoted value"),
                    Some('"') => {
                        self.at += 1;
                        break;
                    }
                    Some('\\') => {
                        match self.chars.get(self.at + 1) {
                            Some(&c @ ('"' | '\\')) => value.push(c),
                            _ => {
                                return self.error(
                                    self.at,
                                    "unknown escape in a quoted value (only \\\" and \\\\)",
                                );
                            }
                        }
                        self.at += 2;
                    }
                    Some(c) => {
                        value.push(c);
                        self.at += 1;
                    }
                }
            }
        } else {
            while let Some(c) = self.peek() {
                if c.is_whitespace() || c == ',' {
                    break;
                }
                if c == '=' || c == '"' {
                    return self.error(self.at, format!("`{c}` inside a value: quote the value"));
                }
                value.push(c);
                self.at += 1;
            }
            if value.is_empty() {
                return self.error(start, "empty value");
            }
        }
        match self.peek() {
            Some(',') => {
                self.at += 1;
                Ok((value, true))
            }
            None => Ok((value, false)),
            Some(c) if c.is_whitespace() => Ok((value, false)),
            Some(_) => self.error(self.at, "expected `,` or a space after a quoted value"),
        }
    }
}

impl FromStr for Selector {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<Selector, ParseError> {
        let mut p = Parser {
            chars: text.chars().collect(),
            at: 0,
        };
        let mut selector = Selector::default();
        loop {
            p.skip_whitespace();
            if p.peek().is_none() {
                break;
            }
            let term = p.at;
            let field = p.field()?;
            let mut values = Vec::new();
            loop {
                let (value, more) = p.value()?;
                values.push(value);
                if !more {
                    break;
                }
            }
            let list = match field {
                Field::Manufacturer => &mut selector.manufacturers,
                Field::Model => &mut selector.models,
                Field::Version => &mut selector.versions,
                Field::Hardware => &mut selector.hardware,
                Field::Group => &mut selector.groups,
                Field::Id => &mut selector.device_ids,
                Field::Tag(key) => {
                    if values.len() > 1 {
                        return p.error(
                            term,
                            format!("tag.{key} takes one value (every tag must match)"),
                        );
                    }
                    if selector.tags.contains_key(&key) {
                        return p.error(term, format!("tag.{key} given twice"));
                    }
                    selector.tags.insert(key, values.remove(0));
                    continue;
                }
            };
            list.extend(values);
        }
        selector.validate()?;
        Ok(selector)
    }
}

fn write_value(f: &mut fmt::Formatter<'_>, value: &str) -> fmt::Result {
    let bare = !value.is_empty()
        && !value
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, ',' | '=' | '"' | '\\'));
    if bare {
        return f.write_str(value);
    }
    f.write_str("\"")?;
    for c in value.chars() {
        if matches!(c, '"' | '\\') {
            f.write_str("\\")?;
        }
        write!(f, "{c}")?;
    }
    f.write_str("\"")
}

/// The canonical text: fields in the order manufacturer, model, version, hw, tags (by key),
/// group, id; one term per field.
impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut term = |f: &mut fmt::Formatter<'_>, name: &str, values: &[&str]| {
            if values.is_empty() {
                return Ok(());
            }
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            write!(f, "{name}=")?;
            for (i, value) in values.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                write_value(f, value)?;
            }
            Ok(())
        };
        fn refs(v: &[String]) -> Vec<&str> {
            v.iter().map(String::as_str).collect()
        }
        term(f, "manufacturer", &refs(&self.manufacturers))?;
        term(f, "model", &refs(&self.models))?;
        term(f, "version", &refs(&self.versions))?;
        term(f, "hw", &refs(&self.hardware))?;
        for (key, value) in &self.tags {
            term(f, &format!("tag.{key}"), &[value])?;
        }
        term(f, "group", &refs(&self.groups))?;
        term(f, "id", &refs(&self.device_ids))
    }
}
