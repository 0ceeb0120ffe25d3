//! Inputs from seeds: input number `i` of a run is a pure function of the run's seed and `i`,
//! so any input, the one a crashed worker was running included, can be made again from two
//! numbers. The first inputs are the seeds themselves; then each input is one of:
//!
//! - `bytes`: 1–8 byte mutations of a seed (bit flips, interesting bytes, inserts, deletes,
//!   duplicated ranges, splices from other seeds, dictionary tokens, edge numbers, truncation);
//! - `tree`: 1–4 mutations of a seed's JSON (or YAML) tree (a value swapped for another type,
//!   removed, duplicated, wrapped in arrays or objects, keys added, strings and numbers
//!   replaced, subtrees crossed over from other seeds), written compact or pretty;
//! - `arbitrary`: JSON built by `arbitrary` from random bytes (keys and strings mostly from the
//!   seeds' dictionary), alone or grafted into a seed;
//! - hostile shapes: nesting thousands of levels deep (`deep-json`, `deep-brace` globs),
//!   multi-megabyte strings (`huge-string`), numbers at the edges (`edge-number`), huge arrays
//!   and long `needs` chains (`long-list`), YAML alias bombs and deep block nesting (`yaml`).
//!
//! Hostile values are spliced into the serialized text, never built as `Value`s: a `Value`
//! nested ten thousand deep would overflow the stack of this process when dropped.

mod hostile;
mod tree;

use arbitrary::{Arbitrary, Unstructured};
use fastrand::Rng;
use serde_json::{Map, Value};

use self::hostile::{EDGE_NUMBERS, HOSTILE_TOKENS, YAML_TOKENS, deep_brace, deep_json, edge_value, yaml_hostile};
use self::tree::{Shape, Step, all_paths, collect_words, is_pattern_like, node_mut, node_ref, remove};
use crate::Target;
use crate::corpus;

/// Upper bound of a mutated input; hostile generators stay just above 5 MiB.
const MAX_INPUT_BYTES: usize = 6 << 20;
/// Marks the node a raw text splice replaces; no seed contains it.
const SPLICE_MARK: &str = "\u{1}kici-fuzz-splice\u{1}";
/// Event names the webhook presets send, and some they do not.
const EVENT_NAMES: [&str; 8] = [
    "push",
    "pull_request",
    "Push Hook",
    "Tag Push Hook",
    "Merge Request Hook",
    "issues",
    "ping",
    "",
];
/// Provider names `webhook.rs` derives from the source presets.
const PROVIDERS: [&str; 5] = ["github", "gitea", "forgejo", "gitlab", "local"];
/// How an input was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Strategy {
    Seed,
    Bytes,
    Tree,
    Arbitrary,
    DeepJson,
    DeepBrace,
    HugeString,
    EdgeNumber,
    LongList,
    Yaml,
}

impl Strategy {
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Seed => "seed",
            Strategy::Bytes => "bytes",
            Strategy::Tree => "tree",
            Strategy::Arbitrary => "arbitrary",
            Strategy::DeepJson => "deep-json",
            Strategy::DeepBrace => "deep-brace",
            Strategy::HugeString => "huge-string",
            Strategy::EdgeNumber => "edge-number",
            Strategy::LongList => "long-list",
            Strategy::Yaml => "yaml",
        }
    }
}

/// What the bytes of a target's input are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    /// JSON messages, one per line: never pretty-printed.
    JsonLines,
    /// `<event>\n<provider>\n<JSON body>`.
    Webhook,
    Yaml,
    /// NUL-separated pattern fields.
    Fields,
}

impl Format {
    fn of(target: Target) -> Format {
        match target {
            Target::Lockfile | Target::AgentProtocol | Target::PlatformProtocol | Target::Triggers => Format::Json,
            Target::RunnerProtocol => Format::JsonLines,
            Target::Webhook => Format::Webhook,
            Target::Scalers => Format::Yaml,
            Target::Patterns => Format::Fields,
        }
    }
}

struct Seed {
    bytes: Vec<u8>,
    /// The webhook frame's header lines, kept by tree mutations of the body.
    header: Vec<u8>,
    /// The parsed body, when it is one JSON (or YAML) document.
    tree: Option<Value>,
}

/// Makes the inputs of one target.
pub struct Generator {
    format: Format,
    /// Elements of the longest list `long-list` makes.
    max_list: usize,
    seeds: Vec<Seed>,
    dictionary: Vec<String>,
}

impl Generator {
    /// The generator of `target`; `max_list` bounds `long-list` inputs, whose cost grows with
    /// their length (thousands of patterns compile slowly on a debug build).
    pub fn new(target: Target, max_list: usize) -> Generator {
        let format = Format::of(target);
        let seeds: Vec<Seed> = corpus::seeds(target)
            .into_iter()
            .map(|bytes| {
                let header_len = match format {
                    Format::Webhook => header_len(&bytes),
                    _ => 0,
                };
                let body = &bytes[header_len..];
                let tree = match format {
                    Format::Json | Format::Webhook => serde_json::from_slice(body).ok(),
                    Format::JsonLines if !body.contains(&b'\n') => serde_json::from_slice(body).ok(),
                    Format::Yaml => std::str::from_utf8(body)
                        .ok()
                        .and_then(|text| serde_saphyr::from_str::<Value>(text).ok()),
                    Format::JsonLines | Format::Fields => None,
                };
                Seed {
                    header: bytes[..header_len].to_vec(),
                    bytes,
                    tree,
                }
            })
            .collect();
        let mut dictionary: Vec<String> = HOSTILE_TOKENS.iter().map(|token| token.to_string()).collect();
        if format == Format::Yaml {
            dictionary.extend(YAML_TOKENS.iter().map(|token| token.to_string()));
        }
        for seed in &seeds {
            match &seed.tree {
                Some(tree) => collect_words(tree, &mut dictionary),
                None => dictionary.extend(crate::targets::pattern_fields(&seed.bytes)),
            }
        }
        dictionary.sort();
        dictionary.dedup();
        Generator {
            format,
            max_list: max_list.max(1),
            seeds,
            dictionary,
        }
    }

    /// Input number `index` of the run seeded with `seed`.
    pub fn input(&self, seed: u64, index: u64) -> (Vec<u8>, Strategy) {
        if let Some(seed) = usize::try_from(index).ok().and_then(|i| self.seeds.get(i)) {
            return (seed.bytes.clone(), Strategy::Seed);
        }
        let mut rng = Rng::with_seed(splitmix(seed ^ splitmix(index)));
        // Per mille. Huge strings and long lists cost hundreds of ordinary inputs each, so
        // they are rare enough to take about as much time as the rest.
        let strategy = match rng.u32(0..1000) {
            0..300 => Strategy::Bytes,
            300..640 => Strategy::Tree,
            640..820 => Strategy::Arbitrary,
            820..870 => Strategy::DeepJson,
            870..920 => Strategy::DeepBrace,
            920..960 => Strategy::EdgeNumber,
            960..980 if self.format == Format::Yaml => Strategy::Yaml,
            960..980 => Strategy::DeepJson,
            980..995 => Strategy::HugeString,
            _ => Strategy::LongList,
        };
        let mut data = match strategy {
            Strategy::Bytes => self.bytes(&mut rng),
            Strategy::Tree => self.tree(&mut rng),
            Strategy::Arbitrary => self.arbitrary(&mut rng),
            hostile => self.hostile(hostile, &mut rng),
        };
        data.truncate(MAX_INPUT_BYTES);
        (data, strategy)
    }

    fn pick_seed(&self, rng: &mut Rng) -> &Seed {
        &self.seeds[rng.usize(..self.seeds.len())]
    }

    /// A seed with a tree, if the target has any.
    fn pick_tree(&self, rng: &mut Rng) -> Option<&Seed> {
        let with_tree: Vec<&Seed> = self.seeds.iter().filter(|seed| seed.tree.is_some()).collect();
        (!with_tree.is_empty()).then(|| with_tree[rng.usize(..with_tree.len())])
    }

    fn word(&self, rng: &mut Rng) -> &str {
        &self.dictionary[rng.usize(..self.dictionary.len())]
    }

    fn bytes(&self, rng: &mut Rng) -> Vec<u8> {
        let mut data = self.pick_seed(rng).bytes.clone();
        for _ in 0..rng.usize(1..=8) {
            self.byte_op(&mut data, rng);
        }
        data
    }

    fn byte_op(&self, data: &mut Vec<u8>, rng: &mut Rng) {
        const INTERESTING: [u8; 16] = [
            0, 0xff, 0x7f, 0x80, b'"', b'\\', b'{', b'}', b'[', b']', b',', b':', b'\n', b'*', b'-', b'0',
        ];
        let len = data.len();
        let at = rng.usize(..=len);
        let span = |rng: &mut Rng| rng.usize(1..=16.min(len - at).max(1));
        match rng.u8(0..10) {
            0 if at < len => data[at] ^= 1 << rng.u8(0..8),
            1 if at < len => data[at] = INTERESTING[rng.usize(..INTERESTING.len())],
            2 => {
                let mut random = vec![0; rng.usize(1..=16)];
                rng.fill(&mut random);
                data.splice(at..at, random);
            }
            3 if at < len => {
                let end = at + span(rng);
                data.drain(at..end.min(len));
            }
            4 if at < len => {
                let chunk = data[at..(at + span(rng)).min(len)].to_vec();
                let to = rng.usize(..=len);
                data.splice(to..to, chunk);
            }
            5 => {
                let other = &self.pick_seed(rng).bytes;
                let from = rng.usize(..=other.len());
                let to = (from + rng.usize(0..=64)).min(other.len());
                data.splice(at..at, other[from..to].iter().copied());
            }
            6 => {
                let word = self.word(rng).to_string();
                let token = if rng.bool() {
                    serde_json::to_string(&word).expect("strings serialize")
                } else {
                    word
                };
                data.splice(at..at, token.into_bytes());
            }
            7 => {
                let start = data.iter().position(|b| b.is_ascii_digit()).map(|first| {
                    let skip = rng.usize(..=len - first);
                    data[first + skip..]
                        .iter()
                        .position(|b| b.is_ascii_digit())
                        .map_or(first, |p| first + skip + p)
                });
                if let Some(start) = start {
                    let end = data[start..]
                        .iter()
                        .position(|b| !b.is_ascii_digit() && !b".eE+-".contains(b))
                        .map_or(len, |p| start + p);
                    let edge = EDGE_NUMBERS[rng.usize(..EDGE_NUMBERS.len())];
                    data.splice(start..end, edge.bytes());
                }
            }
            8 => data.truncate(at),
            _ if at < len => {
                let end = (at + span(rng)).min(len);
                let word = self.word(rng).as_bytes().to_vec();
                data.splice(at..end, word);
            }
            _ => data.push(INTERESTING[rng.usize(..INTERESTING.len())]),
        }
    }

    fn tree(&self, rng: &mut Rng) -> Vec<u8> {
        let Some(seed) = self.pick_tree(rng) else {
            return self.fields(rng);
        };
        let mut tree = seed.tree.clone().expect("picked for its tree");
        for _ in 0..rng.usize(1..=4) {
            self.tree_op(&mut tree, rng);
        }
        let mut data = self.write(seed, &tree, rng);
        if rng.u8(0..5) == 0 {
            self.byte_op(&mut data, rng);
        }
        data
    }

    /// Serializes a tree back into the target's format, under the seed's header.
    fn write(&self, seed: &Seed, tree: &Value, rng: &mut Rng) -> Vec<u8> {
        let mut data = seed.header.clone();
        if self.format == Format::Webhook && rng.u8(0..4) == 0 {
            let event_name = EVENT_NAMES[rng.usize(..EVENT_NAMES.len())];
            let provider = PROVIDERS[rng.usize(..PROVIDERS.len())];
            data = format!("{event_name}\n{provider}\n").into_bytes();
        }
        let pretty = self.format != Format::JsonLines && rng.bool();
        let body = if pretty {
            serde_json::to_vec_pretty(tree)
        } else {
            serde_json::to_vec(tree)
        };
        data.extend(body.expect("JSON values serialize"));
        data
    }

    fn tree_op(&self, tree: &mut Value, rng: &mut Rng) {
        let paths = all_paths(tree);
        let path = &paths[rng.usize(..paths.len())];
        let operation = rng.u8(0..10);
        if operation == 1 {
            remove(tree, path);
            return;
        }
        let other = self.random_node(rng);
        let node = node_mut(tree, path);
        match operation {
            0 => *node = self.other_type(node, rng),
            2 => match node {
                Value::Array(items) if !items.is_empty() => {
                    let copy = items[rng.usize(..items.len())].clone();
                    items.insert(rng.usize(..=items.len()), copy);
                }
                Value::Object(map) => {
                    map.insert(self.word(rng).to_string(), other);
                }
                _ => *node = Value::Array(vec![node.clone(), node.clone()]),
            },
            3 => {
                if let Value::Object(map) = node {
                    map.insert(self.word(rng).to_string(), self.small_value(rng));
                }
            }
            4 => {
                let word = self.word(rng);
                *node = match node {
                    Value::String(text) if rng.bool() => Value::String(format!("{text}{word}")),
                    _ => Value::String(word.to_string()),
                };
            }
            5 => *node = edge_value(rng),
            6 => {
                let depth = if rng.u8(0..8) == 0 {
                    rng.usize(100..=140)
                } else {
                    rng.usize(1..=4)
                };
                for _ in 0..depth {
                    let inner = node.take();
                    *node = if rng.bool() {
                        Value::Array(vec![inner])
                    } else {
                        Value::Object(Map::from_iter([(self.word(rng).to_string(), inner)]))
                    };
                }
            }
            7 => *node = other,
            8 => match node {
                Value::Array(items) => items.reverse(),
                Value::Object(map) => {
                    let mut entries: Vec<(String, Value)> = std::mem::take(map).into_iter().collect();
                    rng.shuffle(&mut entries);
                    map.extend(entries);
                }
                _ => *node = Value::Null,
            },
            _ => match node {
                Value::Array(items) => items.clear(),
                Value::Object(map) => map.clear(),
                Value::String(text) => text.clear(),
                _ => *node = Value::Bool(rng.bool()),
            },
        }
    }

    /// A copy of a random node of a random seed.
    fn random_node(&self, rng: &mut Rng) -> Value {
        let Some(tree) = self.pick_tree(rng).and_then(|seed| seed.tree.as_ref()) else {
            return Value::Null;
        };
        let paths = all_paths(tree);
        let mut tree = tree.clone();
        node_mut(&mut tree, &paths[rng.usize(..paths.len())]).take()
    }

    fn other_type(&self, node: &Value, rng: &mut Rng) -> Value {
        let choices = [
            Value::Null,
            Value::Bool(true),
            Value::from(0),
            Value::from(-1),
            Value::from(1.5),
            Value::String(String::new()),
            Value::String(self.word(rng).to_string()),
            Value::Array(vec![]),
            Value::Object(Map::new()),
            self.arbitrary_value(rng),
        ];
        let same_type = |value: &Value| std::mem::discriminant(value) == std::mem::discriminant(node);
        let others: Vec<&Value> = choices.iter().filter(|value| !same_type(value)).collect();
        others[rng.usize(..others.len())].clone()
    }

    fn small_value(&self, rng: &mut Rng) -> Value {
        match rng.u8(0..4) {
            0 => Value::String(self.word(rng).to_string()),
            1 => edge_value(rng),
            2 => self.random_node(rng),
            _ => self.arbitrary_value(rng),
        }
    }

    fn arbitrary_value(&self, rng: &mut Rng) -> Value {
        let mut bytes = vec![0; rng.usize(4..=512)];
        rng.fill(&mut bytes);
        let mut unstructured = Unstructured::new(&bytes);
        Shape::arbitrary(&mut unstructured).map_or(Value::Null, |shape| shape.into_value(&self.dictionary, 0))
    }

    fn arbitrary(&self, rng: &mut Rng) -> Vec<u8> {
        let Some(seed) = self.pick_tree(rng) else {
            return self.fields(rng);
        };
        let value = self.arbitrary_value(rng);
        if rng.bool() {
            return self.write(seed, &value, rng);
        }
        let mut tree = seed.tree.clone().expect("picked for its tree");
        let paths = all_paths(&tree);
        *node_mut(&mut tree, &paths[rng.usize(..paths.len())]) = value;
        self.write(seed, &tree, rng)
    }

    /// Pattern fields from the dictionary, `arbitrary` strings and seed fields.
    fn fields(&self, rng: &mut Rng) -> Vec<u8> {
        let mut fields = crate::targets::pattern_fields(&self.pick_seed(rng).bytes);
        for _ in 0..rng.usize(1..=3) {
            let at = rng.usize(..fields.len());
            fields[at] = match rng.u8(0..3) {
                0 => self.word(rng).to_string(),
                1 => format!("{}{}", fields[at], self.word(rng)),
                _ => {
                    let mut bytes = vec![0; rng.usize(1..=64)];
                    rng.fill(&mut bytes);
                    String::arbitrary(&mut Unstructured::new(&bytes)).unwrap_or_default()
                }
            };
        }
        if rng.u8(0..4) == 0 {
            fields.push(self.word(rng).to_string());
        }
        fields.join("\0").into_bytes()
    }

    fn hostile(&self, strategy: Strategy, rng: &mut Rng) -> Vec<u8> {
        let raw = match strategy {
            Strategy::DeepBrace => deep_brace(rng),
            Strategy::HugeString => self.huge_string(rng),
            Strategy::EdgeNumber => EDGE_NUMBERS[rng.usize(..EDGE_NUMBERS.len())].to_string(),
            Strategy::Yaml => return yaml_hostile(rng),
            Strategy::LongList => return self.long_list(rng),
            _ => deep_json(rng),
        };
        self.splice(&raw, strategy, rng)
    }

    /// Puts raw text in place of a node of a seed (a pattern-like string for `deep-brace`),
    /// or in place of a pattern field.
    fn splice(&self, raw: &str, strategy: Strategy, rng: &mut Rng) -> Vec<u8> {
        let Some(seed) = self.pick_tree(rng) else {
            let mut fields = crate::targets::pattern_fields(&self.pick_seed(rng).bytes);
            let at = if strategy == Strategy::DeepBrace || rng.bool() {
                0
            } else {
                rng.usize(..fields.len())
            };
            fields[at] = raw.to_string();
            return fields.join("\0").into_bytes();
        };
        if rng.u8(0..8) == 0 {
            return raw.as_bytes().to_vec();
        }
        let mut tree = seed.tree.clone().expect("picked for its tree");
        let paths = all_paths(&tree);
        let pattern_like: Vec<&Vec<Step>> = paths.iter().filter(|path| is_pattern_like(path)).collect();
        let path = match strategy {
            Strategy::DeepBrace | Strategy::HugeString if !pattern_like.is_empty() && rng.u8(0..4) != 0 => {
                pattern_like[rng.usize(..pattern_like.len())]
            }
            _ => &paths[rng.usize(..paths.len())],
        };
        let text_value = matches!(strategy, Strategy::DeepBrace | Strategy::HugeString);
        let replacement = if text_value {
            serde_json::to_string(raw).expect("strings serialize")
        } else {
            raw.to_string()
        };
        *node_mut(&mut tree, path) = Value::String(SPLICE_MARK.to_string());
        let data = self.write(seed, &tree, rng);
        let mark = serde_json::to_vec(SPLICE_MARK).expect("strings serialize");
        match data.windows(mark.len()).position(|window| window == mark) {
            Some(at) => {
                let mut spliced = data[..at].to_vec();
                spliced.extend_from_slice(replacement.as_bytes());
                spliced.extend_from_slice(&data[at + mark.len()..]);
                spliced
            }
            None => data,
        }
    }

    fn huge_string(&self, rng: &mut Rng) -> String {
        let size = match rng.u8(0..8) {
            0 => 5 << 20,
            1 | 2 => 1 << 20,
            _ => 64 << 10,
        };
        let unit = match rng.u8(0..4) {
            0 => self.word(rng).to_string(),
            1 => "**/".to_string(),
            2 => "é𝄞\u{feff}".to_string(),
            _ => "a".to_string(),
        };
        // A NUL would split a pattern case into a million empty patterns: a long list, not a
        // long string.
        let unit = match unit.replace('\0', "") {
            unit if unit.is_empty() => "a".to_string(),
            unit => unit,
        };
        unit.repeat(size / unit.len() + 1)
    }

    /// A seed array grown to thousands of elements: copies of one element, objects renamed
    /// `<name>-<i>` and, when they have `needs`, chained to the one before (a long needs
    /// graph); or ten thousand keys in an object.
    fn long_list(&self, rng: &mut Rng) -> Vec<u8> {
        let Some(seed) = self.pick_tree(rng) else {
            let field = self.word(rng).to_string();
            return vec![field; rng.usize(1..=self.max_list)].join("\0").into_bytes();
        };
        let mut tree = seed.tree.clone().expect("picked for its tree");
        let paths = all_paths(&tree);
        let arrays: Vec<&Vec<Step>> = paths
            .iter()
            .filter(|path| matches!(node_ref(&tree, path), Some(Value::Array(items)) if !items.is_empty()))
            .collect();
        let count = match rng.u8(0..10) {
            0 => self.max_list,
            1..=3 => self.max_list / 10,
            _ => self.max_list / 100,
        }
        .max(1);
        if arrays.is_empty() || rng.u8(0..5) == 0 {
            let node = node_mut(&mut tree, &paths[rng.usize(..paths.len())]);
            *node = Value::Object((0..count).map(|i| (format!("k{i}"), Value::from(i))).collect());
            return self.write(seed, &tree, rng);
        }
        let path = arrays[rng.usize(..arrays.len())].clone();
        let rename = rng.bool();
        let template_index = rng.u32(..);
        if let Value::Array(items) = node_mut(&mut tree, &path) {
            let template = items[template_index as usize % items.len()].clone();
            *items = (0..count).map(|i| numbered(&template, i, rename)).collect();
        }
        self.write(seed, &tree, rng)
    }
}

/// Copy `i` of a list element; with `rename`, an object's `name` gets `-<i>` and its `needs`,
/// if any, the copy before it: a needs chain as long as the list.
fn numbered(template: &Value, i: usize, rename: bool) -> Value {
    let mut item = template.clone();
    if let (true, Value::Object(map)) = (rename, &mut item)
        && let Some(Value::String(name)) = map.get("name").cloned()
    {
        map.insert("name".into(), Value::String(format!("{name}-{i}")));
        if map.contains_key("needs") {
            let needs = match i {
                0 => vec![],
                _ => vec![Value::String(format!("{name}-{}", i - 1))],
            };
            map.insert("needs".into(), Value::Array(needs));
        }
    }
    item
}

/// SplitMix64: spreads `(seed, index)` over the generator's seed space.
fn splitmix(value: u64) -> u64 {
    let mut z = value.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Where a webhook frame's body starts: after the second newline.
fn header_len(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .enumerate()
        .filter(|(_, byte)| **byte == b'\n')
        .nth(1)
        .map_or(0, |(at, _)| at + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_a_function_of_seed_and_index() {
        for target in Target::ALL {
            let generator = Generator::new(target, 1_000);
            for index in 0..200 {
                assert_eq!(
                    generator.input(7, index),
                    generator.input(7, index),
                    "{target} #{index}"
                );
            }
        }
    }

    #[test]
    fn every_strategy_is_used() {
        let generator = Generator::new(Target::Scalers, 1_000);
        let used: std::collections::HashSet<Strategy> = (0..5_000).map(|index| generator.input(1, index).1).collect();
        assert_eq!(used.len(), 10, "{used:?}");
    }

    #[test]
    fn deep_brace_reaches_pattern_fields() {
        let generator = Generator::new(Target::Lockfile, 1_000);
        let deep = (0..1_500)
            .map(|index| generator.input(3, index))
            .filter(|(data, strategy)| *strategy == Strategy::DeepBrace && data.windows(20).any(|w| w == [b'{'; 20]))
            .count();
        assert!(deep > 3, "{deep}");
    }
}
