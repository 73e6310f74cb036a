//! The paths a Rust source file names, read from its tokens rather than its lines.
//!
//! The lexer is `proc-macro2`'s own, so comments, string and char literals, raw
//! strings and lifetimes are never mistaken for code. On top of it sits a small
//! parser for the two places a path appears:
//!
//! - `use` trees in every form (`use std::{self, env}`, `use crate::dm::{\n session::X}`,
//!   nested braces, `as` renames, globs) and `extern crate`, each expanded to the
//!   full path it imports;
//! - paths in code, wherever they are (expressions, types, attributes, macro
//!   bodies): `std::fs::read(`, `tokio::spawn`, `<T as sea_orm::EntityTrait>`,
//!   plus bare macro calls such as `println!`.
//!
//! A path in code whose first segment is a name some `use` bound (`fs::read` after
//! `use std::fs`, `I::now` after `use std::time::Instant as I`) is expanded
//! through that binding. Bindings are collected file-wide, not per module: a
//! stricter reading than the compiler's, never a laxer one.

use std::collections::HashMap;

use proc_macro2::{Delimiter, Spacing, TokenStream, TokenTree};

/// How a path appears in the source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Imported by `use` or `extern crate`.
    Use,
    /// A `use` glob: everything under the path (`use std::*`).
    Glob,
    /// Named in code.
    Code,
    /// A macro invoked by this path (`println!`, `tokio::select!`).
    Macro,
}

/// One path, as far as it can be resolved, and the line it starts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathRef {
    pub segments: Vec<String>,
    pub line: usize,
    pub kind: Kind,
}

impl PathRef {
    pub fn display(&self) -> String {
        let mut s = self.segments.join("::");
        match self.kind {
            Kind::Glob => s.push_str("::*"),
            Kind::Macro => s.push('!'),
            Kind::Use | Kind::Code => {}
        }
        s
    }
}

/// Every path `text` names. Fails, rather than guessing, on text that does not lex.
pub fn paths(text: &str) -> Result<Vec<PathRef>, String> {
    let stream: TokenStream = text
        .parse()
        .map_err(|e| format!("does not lex as Rust: {e:?}"))?;
    let mut found = Vec::new();
    let mut bindings = HashMap::new();
    walk(stream, &mut found, &mut bindings);
    for path in &mut found {
        if path.kind == Kind::Code || path.kind == Kind::Macro {
            path.segments = expand(&path.segments, &bindings);
        }
    }
    Ok(found)
}

/// The paths named inside `#[cfg(test)] mod name { ... }` blocks, at any depth.
pub fn test_module_paths(text: &str) -> Result<Vec<PathRef>, String> {
    let stream: TokenStream = text
        .parse()
        .map_err(|e| format!("does not lex as Rust: {e:?}"))?;
    let mut blocks = Vec::new();
    cfg_test_blocks(stream, &mut blocks);
    let mut found = Vec::new();
    for block in blocks {
        let mut bindings = HashMap::new();
        let start = found.len();
        walk(block, &mut found, &mut bindings);
        for path in &mut found[start..] {
            if path.kind == Kind::Code || path.kind == Kind::Macro {
                path.segments = expand(&path.segments, &bindings);
            }
        }
    }
    Ok(found)
}

fn is_cfg_test(group: &proc_macro2::Group) -> bool {
    group.delimiter() == Delimiter::Bracket
        && group.stream().to_string().replace(' ', "") == "cfg(test)"
}

fn cfg_test_blocks(stream: TokenStream, blocks: &mut Vec<TokenStream>) {
    let tokens: Vec<TokenTree> = stream.into_iter().collect();
    let mut armed = false; // a `#[cfg(test)]` seen, its item not yet
    for (i, token) in tokens.iter().enumerate() {
        match token {
            TokenTree::Group(g) if i > 0 && is_punct(tokens.get(i - 1), '#') => {
                armed |= is_cfg_test(g);
            }
            TokenTree::Group(g) if g.delimiter() == Delimiter::Brace => {
                let is_mod = i >= 2 && is_ident(tokens.get(i - 2), "mod");
                if armed && is_mod {
                    blocks.push(g.stream());
                } else {
                    cfg_test_blocks(g.stream(), blocks);
                }
                armed = false;
            }
            TokenTree::Punct(p) if p.as_char() == ';' => armed = false,
            _ => {}
        }
    }
}

/// Follows `use` bindings from the first segment, a bounded number of times.
fn expand(segments: &[String], bindings: &HashMap<String, Vec<String>>) -> Vec<String> {
    let mut current = segments.to_vec();
    for _ in 0..8 {
        let Some(target) = bindings.get(&current[0]) else {
            break;
        };
        if target.len() == 1 && target[0] == current[0] {
            break; // `use tokio;` binds `tokio` to itself
        }
        let mut next = target.clone();
        next.extend_from_slice(&current[1..]);
        current = next;
    }
    current
}

fn is_ident(t: Option<&TokenTree>, name: &str) -> bool {
    matches!(t, Some(TokenTree::Ident(i)) if i == name)
}

fn is_punct(t: Option<&TokenTree>, ch: char) -> bool {
    matches!(t, Some(TokenTree::Punct(p)) if p.as_char() == ch)
}

/// `::` at `i`: a joint `:` followed by `:`.
fn is_path_sep(tokens: &[TokenTree], i: usize) -> bool {
    matches!(tokens.get(i), Some(TokenTree::Punct(p)) if p.as_char() == ':' && p.spacing() == Spacing::Joint)
        && is_punct(tokens.get(i + 1), ':')
}

fn line_of(t: &TokenTree) -> usize {
    t.span().start().line
}

fn walk(
    stream: TokenStream,
    found: &mut Vec<PathRef>,
    bindings: &mut HashMap<String, Vec<String>>,
) {
    let tokens: Vec<TokenTree> = stream.into_iter().collect();
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            TokenTree::Ident(ident) if ident == "use" => {
                let line = line_of(&tokens[i]);
                let end = (i + 1..tokens.len())
                    .find(|&j| is_punct(tokens.get(j), ';'))
                    .unwrap_or(tokens.len());
                let mut j = i + 1;
                use_tree(&tokens[..end], &mut j, Vec::new(), line, found, bindings);
                i = end + 1;
            }
            TokenTree::Ident(ident)
                if ident == "extern" && is_ident(tokens.get(i + 1), "crate") =>
            {
                if let Some(TokenTree::Ident(krate)) = tokens.get(i + 2) {
                    let name = krate.to_string();
                    let binding = match (tokens.get(i + 3), tokens.get(i + 4)) {
                        (Some(TokenTree::Ident(r#as)), Some(TokenTree::Ident(alias)))
                            if r#as == "as" =>
                        {
                            alias.to_string()
                        }
                        _ => name.clone(),
                    };
                    bindings.insert(binding, vec![name.clone()]);
                    found.push(PathRef {
                        segments: vec![name],
                        line: line_of(&tokens[i]),
                        kind: Kind::Use,
                    });
                }
                i += 3;
            }
            TokenTree::Ident(_) => {
                let line = line_of(&tokens[i]);
                let mut segments = vec![tokens[i].to_string()];
                let mut j = i + 1;
                while is_path_sep(&tokens, j) {
                    match tokens.get(j + 2) {
                        Some(TokenTree::Ident(next)) => {
                            segments.push(next.to_string());
                            j += 3;
                        }
                        _ => break, // `::<` (turbofish) ends the path
                    }
                }
                // `name!(…)`, `name![…]`, `name!{…}`; not `a != b` nor `if !(…)`'s `!`
                // after a keyword, which is harmless: no rule names a keyword.
                let kind = if is_punct(tokens.get(j), '!')
                    && matches!(tokens.get(j + 1), Some(TokenTree::Group(_)))
                {
                    Kind::Macro
                } else {
                    Kind::Code
                };
                // A lone identifier is a variable or a type far more often than a crate;
                // it counts only as a macro call (or an attribute, see `attribute_path`).
                if segments.len() > 1 || kind == Kind::Macro {
                    found.push(PathRef {
                        segments,
                        line,
                        kind,
                    });
                }
                i = j;
            }
            TokenTree::Punct(_) if is_path_sep(&tokens, i) => {
                i += 2; // a leading `::` (`::tokio::spawn`): the path starts after it
            }
            TokenTree::Group(group) => {
                let inner = group.stream();
                // `#[path(...)]` and `#![path(...)]`: the attribute's path is the group's head.
                let attribute = group.delimiter() == Delimiter::Bracket
                    && i > 0
                    && (is_punct(tokens.get(i - 1), '#')
                        || (is_punct(tokens.get(i - 1), '!')
                            && i > 1
                            && is_punct(tokens.get(i - 2), '#')));
                if attribute {
                    attribute_path(&inner, found);
                }
                walk(inner, found, bindings);
                i += 1;
            }
            _ => i += 1,
        }
    }
}

/// Records a one-segment attribute path (`#[sea_orm(table_name = "x")]`); longer
/// ones (`#[tokio::test]`) are found by the ordinary walk.
fn attribute_path(inner: &TokenStream, found: &mut Vec<PathRef>) {
    let tokens: Vec<TokenTree> = inner.clone().into_iter().collect();
    if let Some(TokenTree::Ident(head)) = tokens.first()
        && !is_path_sep(&tokens, 1)
        && head != "doc"
    {
        found.push(PathRef {
            segments: vec![head.to_string()],
            line: line_of(&tokens[0]),
            kind: Kind::Code,
        });
    }
}

/// Parses one use tree starting at `tokens[*i]` under `prefix`, recording what it imports.
fn use_tree(
    tokens: &[TokenTree],
    i: &mut usize,
    prefix: Vec<String>,
    line: usize,
    found: &mut Vec<PathRef>,
    bindings: &mut HashMap<String, Vec<String>>,
) {
    let mut path = prefix;
    // A branch is reported on the line where it begins (`session::X` inside a
    // multi-line group, not the `use` above it).
    let line = tokens.get(*i).map_or(line, line_of);
    if is_path_sep(tokens, *i) {
        *i += 2;
    }
    loop {
        match tokens.get(*i) {
            Some(TokenTree::Ident(ident)) => {
                *i += 1;
                let segment = ident.to_string();
                if segment != "self" || path.is_empty() {
                    path.push(segment);
                }
                if is_path_sep(tokens, *i) {
                    *i += 2;
                    continue;
                }
                let binding = if is_ident(tokens.get(*i), "as") {
                    let alias = tokens.get(*i + 1).map(|t| t.to_string());
                    *i += 2;
                    alias
                } else {
                    path.last().cloned()
                };
                if let Some(binding) = binding
                    && binding != "_"
                {
                    bindings.insert(binding, path.clone());
                }
                found.push(PathRef {
                    segments: path,
                    line,
                    kind: Kind::Use,
                });
                return;
            }
            Some(TokenTree::Punct(p)) if p.as_char() == '*' => {
                *i += 1;
                found.push(PathRef {
                    segments: path,
                    line,
                    kind: Kind::Glob,
                });
                return;
            }
            Some(TokenTree::Group(group)) if group.delimiter() == Delimiter::Brace => {
                *i += 1;
                let inner: Vec<TokenTree> = group.stream().into_iter().collect();
                let mut j = 0;
                while j < inner.len() {
                    use_tree(&inner, &mut j, path.clone(), line, found, bindings);
                    // Skip to just past the comma that ends this branch.
                    while j < inner.len() && !is_punct(inner.get(j), ',') {
                        j += 1;
                    }
                    j += 1;
                }
                return;
            }
            _ => return, // malformed or empty: the compiler will say so
        }
    }
}
