//! Embeds the three JavaScript packages under `sdk/` and computes, per package, its version
//! (from `package.json`) and its bundle hash: sha256 over its files sorted by relative path,
//! each contributing `path "\0" content "\0"`. A missing package gives `unknown` for both.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

const PACKAGES: [(&str, &str); 3] = [
    ("sdk", "@kici-dev/sdk"),
    ("shared", "@kici-dev/shared"),
    ("engine", "@kici-dev/engine"),
];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let sdk_root = manifest_dir.join("../../sdk");
    let mut code = String::from("pub static BUNDLES: [Bundle; 3] = [\n");
    for (dir, package) in PACKAGES {
        let package_dir = sdk_root.join(dir);
        println!("cargo:rerun-if-changed={}", package_dir.display());
        let mut files = Vec::new();
        if package_dir.is_dir() {
            collect(&package_dir, &package_dir, &mut files);
        }
        files.sort();
        let (version, hash) = if files.is_empty() {
            ("unknown".to_string(), "unknown".to_string())
        } else {
            let mut hasher = Sha256::new();
            for relative in &files {
                let content = std::fs::read(package_dir.join(relative)).expect("read sdk file");
                hasher.update(relative.as_bytes());
                hasher.update(b"\0");
                hasher.update(&content);
                hasher.update(b"\0");
            }
            let hash = hasher.finalize().iter().fold(String::new(), |mut s, b| {
                let _ = write!(s, "{b:02x}");
                s
            });
            (read_version(&package_dir), hash)
        };
        let _ = writeln!(
            code,
            "    Bundle {{ package: {package:?}, dir: {dir:?}, version: {version:?}, hash: {hash:?}, files: &["
        );
        for relative in &files {
            let absolute = package_dir.join(relative).canonicalize().expect("canonical sdk path");
            let _ = writeln!(
                code,
                "        ({relative:?}, include_bytes!({:?})),",
                absolute.display().to_string()
            );
        }
        code.push_str("    ] },\n");
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it")).join("bundles.rs");
    std::fs::write(out, code).expect("write bundles.rs");
}

/// Relative `/`-separated paths of the regular files under `dir`, skipping dot-files.
fn collect(root: &Path, dir: &Path, files: &mut Vec<String>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).expect("read sdk dir").flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, files);
        } else if path.is_file() {
            let relative = path.strip_prefix(root).expect("under root");
            files.push(
                relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/"),
            );
        }
    }
}

fn read_version(package_dir: &Path) -> String {
    std::fs::read_to_string(package_dir.join("package.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|json| json.get("version").and_then(|v| v.as_str()).map(str::to_string))
        .unwrap_or_else(|| "unknown".to_string())
}
