//! Hostile shapes: numbers at the edges, tokens that matter to the parsers, nesting
//! thousands of levels deep, and YAML that costs more than it looks.

use fastrand::Rng;
use serde_json::Value;

/// Numbers at the edges of every integer and float type the decoders use.
pub(super) const EDGE_NUMBERS: [&str; 24] = [
    "0",
    "-0",
    "-1",
    "1e999",
    "-1e999",
    "1e-400",
    "4294967295",
    "4294967296",
    "-2147483649",
    "9007199254740993",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "18446744073709551616",
    "1.7976931348623157e308",
    "5e-324",
    "0.5",
    "1E2",
    "100000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000001",
    "-0.0",
    "2.5e10",
    "65536",
];
/// Tokens that matter to JSON, globs, regexes and labels.
pub(super) const HOSTILE_TOKENS: [&str; 34] = [
    "{", "}", "[", "]", "\"", "\\", ":", ",", "null", "true", "\\u0000", "\\ud800", "**", "*", "?", "[!", "{a,b}",
    "{,}", "(?", "(?i)", "$", "^", "|", "/", "!", "kici:", "..", "../", "\u{feff}", "é", "𝄞", "\u{0}", "\r\n", "\t",
];
/// Tokens that matter to YAML.
pub(super) const YAML_TOKENS: [&str; 20] = [
    "&a ",
    "*a",
    "<<: ",
    "!!binary ",
    "!!str ",
    "!tag ",
    "---\n",
    "...\n",
    "? ",
    "- ",
    "|\n",
    ">-\n",
    "~",
    "0x1F",
    "0o17",
    ".inf",
    ".nan",
    "1_000",
    "yes",
    "%YAML 1.1\n",
];

pub(super) fn edge_value(rng: &mut Rng) -> Value {
    let edges = [
        Value::from(u64::MAX),
        Value::from(i64::MIN),
        Value::from(i64::MAX),
        Value::from(u32::MAX),
        Value::from(u64::from(u32::MAX) + 1),
        Value::from(i64::from(i32::MIN) - 1),
        Value::from(-1),
        Value::from(0),
        Value::from(f64::MAX),
        Value::from(-0.0),
        Value::from(f64::MIN_POSITIVE),
        Value::from((1_u64 << 53) + 1),
    ];
    edges[rng.usize(..edges.len())].clone()
}

/// JSON nested `depth` levels deep, closed or not.
pub(super) fn deep_json(rng: &mut Rng) -> String {
    let depth = [64, 127, 128, 129, 200, 1_000, 10_000, 100_000][rng.usize(..8)];
    let (open, close) = match rng.u8(0..3) {
        0 => ("[", "]"),
        1 => ("{\"a\":", "}"),
        _ => ("[{\"a\":", "}]"),
    };
    let mut text = open.repeat(depth);
    text.push_str("null");
    if rng.u8(0..4) != 0 {
        text.push_str(&close.repeat(depth));
    }
    text
}

/// A brace glob thousands of levels deep: `{{{a}}}` or `{a,{b,{c,…}}}`, sometimes unclosed.
pub(super) fn deep_brace(rng: &mut Rng) -> String {
    let depth = [10, 100, 1_000, 5_000, 10_000, 50_000][rng.usize(..6)];
    let (open, close) = if rng.bool() { ("{", "}") } else { ("{a,", "}") };
    let mut text = open.repeat(depth);
    text.push_str("main");
    if rng.u8(0..5) != 0 {
        text.push_str(&close.repeat(depth));
    }
    text
}

/// YAML that costs more than it looks: an alias bomb, block nesting thousands deep, nested
/// sequences on one line, flow nesting, or a self-referencing anchor.
pub(super) fn yaml_hostile(rng: &mut Rng) -> Vec<u8> {
    let text = match rng.u8(0..5) {
        0 => {
            let mut text = String::from("version: 1\nb0: &b0 [x, x, x, x, x, x, x, x, x]\n");
            for level in 1..10 {
                let aliases = vec![format!("*b{}", level - 1); 9].join(", ");
                text.push_str(&format!("b{level}: &b{level} [{aliases}]\n"));
            }
            text.push_str("scalers: *b9\n");
            text
        }
        1 => {
            let depth = [100, 1_000, 2_000][rng.usize(..3)];
            let mut text = String::from("version: 1\nscalers:\n");
            for level in 0..depth {
                text.push_str(&" ".repeat(level + 2));
                text.push_str("a:\n");
            }
            text
        }
        2 => format!("version: 1\nscalers: {}x\n", "- ".repeat([100, 10_000][rng.usize(..2)])),
        3 => {
            let depth = [128, 1_000, 100_000][rng.usize(..3)];
            format!("version: 1\nscalers: {}{}\n", "[".repeat(depth), "]".repeat(depth))
        }
        _ => "version: 1\nscalers: &s [*s]\n".to_string(),
    };
    text.into_bytes()
}
