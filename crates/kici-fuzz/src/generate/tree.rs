//! Navigating and changing a JSON tree by paths, and `arbitrary`-built JSON.

use arbitrary::Arbitrary;
use serde_json::Value;

/// Keys whose strings are globs, regexes or label matchers.
const PATTERN_KEYS: [&str; 9] = [
    "pattern",
    "source",
    "paths",
    "value",
    "hashFiles",
    "ref",
    "targetBranch",
    "sourceBranch",
    "changedFiles",
];

/// One step of a path from the root of a tree to a node.
#[derive(Debug, Clone)]
pub(super) enum Step {
    Key(String),
    Index(usize),
}

/// Arbitrary JSON, with keys and strings mostly from the seeds' dictionary.
#[derive(Debug, Arbitrary)]
pub(super) enum Shape {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Text(Word),
    List(Vec<Shape>),
    Object(Vec<(Word, Shape)>),
}

/// Two of three words come from the dictionary (`arbitrary` picks variants evenly).
#[derive(Debug, Arbitrary)]
pub(super) enum Word {
    Known(u16),
    AlsoKnown(u16),
    Free(String),
}

impl Word {
    fn into_string(self, dictionary: &[String]) -> String {
        match self {
            Word::Known(index) | Word::AlsoKnown(index) => dictionary[usize::from(index) % dictionary.len()].clone(),
            Word::Free(text) => text,
        }
    }
}

impl Shape {
    /// Depth is capped so the value stays cheap to drop; deep nesting is `deep-json`'s job.
    pub(super) fn into_value(self, dictionary: &[String], depth: usize) -> Value {
        if depth > 32 {
            return Value::Null;
        }
        match self {
            Shape::Null => Value::Null,
            Shape::Bool(value) => Value::Bool(value),
            Shape::Int(value) => Value::from(value),
            Shape::Uint(value) => Value::from(value),
            Shape::Float(value) => Value::from(value),
            Shape::Text(word) => Value::String(word.into_string(dictionary)),
            Shape::List(items) => Value::Array(
                items
                    .into_iter()
                    .map(|item| item.into_value(dictionary, depth + 1))
                    .collect(),
            ),
            Shape::Object(entries) => Value::Object(
                entries
                    .into_iter()
                    .map(|(key, value)| (key.into_string(dictionary), value.into_value(dictionary, depth + 1)))
                    .collect(),
            ),
        }
    }
}

pub(super) fn collect_words(value: &Value, words: &mut Vec<String>) {
    match value {
        Value::String(text) => words.push(text.clone()),
        Value::Array(items) => items.iter().for_each(|item| collect_words(item, words)),
        Value::Object(map) => {
            for (key, item) in map {
                words.push(key.clone());
                collect_words(item, words);
            }
        }
        _ => {}
    }
}

pub(super) fn all_paths(tree: &Value) -> Vec<Vec<Step>> {
    let mut paths = Vec::new();
    let mut stack = vec![(tree, Vec::new())];
    while let Some((node, path)) = stack.pop() {
        match node {
            Value::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    let mut child = path.clone();
                    child.push(Step::Index(index));
                    stack.push((item, child));
                }
            }
            Value::Object(map) => {
                for (key, item) in map {
                    let mut child = path.clone();
                    child.push(Step::Key(key.clone()));
                    stack.push((item, child));
                }
            }
            _ => {}
        }
        paths.push(path);
    }
    paths
}

pub(super) fn node_ref<'a>(tree: &'a Value, path: &[Step]) -> Option<&'a Value> {
    path.iter().try_fold(tree, |node, step| match step {
        Step::Key(key) => node.get(key),
        Step::Index(index) => node.get(index),
    })
}

pub(super) fn node_mut<'a>(tree: &'a mut Value, path: &[Step]) -> &'a mut Value {
    path.iter().fold(tree, |node, step| match step {
        Step::Key(key) => &mut node[key.as_str()],
        Step::Index(index) => &mut node[*index],
    })
}

/// Removes the node at `path` from its parent (the root becomes `null`).
pub(super) fn remove(tree: &mut Value, path: &[Step]) {
    let Some((last, parent)) = path.split_last() else {
        *tree = Value::Null;
        return;
    };
    match (node_mut(tree, parent), last) {
        (Value::Object(map), Step::Key(key)) => {
            map.shift_remove(key);
        }
        (Value::Array(items), Step::Index(index)) => {
            items.remove(*index);
        }
        _ => {}
    }
}

/// A string under a key that holds patterns, or an element of such a list.
pub(super) fn is_pattern_like(path: &[Step]) -> bool {
    path.iter()
        .rev()
        .find_map(|step| match step {
            Step::Key(key) => Some(key.as_str()),
            Step::Index(_) => None,
        })
        .is_some_and(|key| PATTERN_KEYS.contains(&key))
}
