//! TypeScript to JavaScript with oxc: types are stripped (enums and parameter properties
//! lowered), nothing else is down-levelled, and relative imports are made loadable by Node's
//! ESM loader (`./helper` and `./helper.ts` both become `./helper.js`). The output carries an
//! inline source map whose source is the original file, so stack traces and SDK call sites
//! point at the `.ts` the author wrote.

use std::path::Path;

use oxc_allocator::Allocator;
use oxc_ast::ast::{Statement, StringLiteral};
use oxc_codegen::{Codegen, CodegenOptions};
use oxc_parser::Parser;
use oxc_semantic::SemanticBuilder;
use oxc_span::SourceType;
use oxc_transformer::{RewriteExtensionsMode, TransformOptions, Transformer};

/// A syntax or transform error at a byte offset of the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub message: String,
    pub offset: usize,
}

/// Transpiles `source` (the text of `path`, an absolute path). Relative specifiers without an
/// extension are resolved against the file system next to `path`.
pub fn transpile(path: &Path, source: &str) -> Result<String, Vec<SyntaxError>> {
    let allocator = Allocator::default();
    let source_type = SourceType::from_path(path).unwrap_or_else(|_| SourceType::ts());
    let parsed = Parser::new(&allocator, source, source_type).parse();
    if parsed.panicked || !parsed.diagnostics.is_empty() {
        return Err(to_errors(parsed.diagnostics.into_vec()));
    }
    let mut program = parsed.program;
    let base_dir = path.parent().unwrap_or(Path::new("/"));
    for statement in program.body.iter_mut() {
        let specifier = match statement {
            Statement::ImportDeclaration(decl) => Some(&mut decl.source),
            Statement::ExportAllDeclaration(decl) => Some(&mut decl.source),
            Statement::ExportFromDeclaration(decl) => Some(&mut decl.source),
            _ => None,
        };
        if let Some(literal) = specifier {
            resolve_extensionless(&allocator, literal, base_dir);
        }
    }
    let scoping = SemanticBuilder::new()
        .with_enum_eval(true)
        .build(&program)
        .semantic
        .into_scoping();
    let mut options = TransformOptions::default();
    options.typescript.rewrite_import_extensions = Some(RewriteExtensionsMode::Rewrite);
    let transformed = Transformer::new(&allocator, path, &options).build_with_scoping(scoping, &mut program);
    if !transformed.diagnostics.is_empty() {
        return Err(to_errors(transformed.diagnostics.into_vec()));
    }
    let generated = Codegen::new()
        .with_options(CodegenOptions {
            source_map_path: Some(path.to_path_buf()),
            ..CodegenOptions::default()
        })
        .with_source_text(source)
        .build(&program);
    let mut code = generated.code;
    if let Some(mut map) = generated.map {
        map.set_sources([path.to_string_lossy()]);
        code.push_str("\n//# sourceMappingURL=");
        code.push_str(&map.to_data_url());
        code.push('\n');
    }
    Ok(code)
}

/// `./x` becomes `./x.ts` (or `./x/index.ts`) when that file exists, so the transformer's
/// extension rewrite turns it into `./x.js`.
fn resolve_extensionless<'a>(allocator: &'a Allocator, literal: &mut StringLiteral<'a>, base_dir: &Path) {
    let specifier = literal.value.as_str();
    if !(specifier.starts_with("./") || specifier.starts_with("../")) {
        return;
    }
    let has_extension = Path::new(specifier)
        .extension()
        .is_some_and(|ext| matches!(ext.to_str(), Some("js" | "mjs" | "cjs" | "ts" | "mts" | "cts" | "json")));
    if has_extension {
        return;
    }
    let candidates = [format!("{specifier}.ts"), format!("{specifier}/index.ts")];
    if let Some(found) = candidates.iter().find(|c| base_dir.join(c).is_file()) {
        literal.value = allocator.alloc_str(found).into();
        literal.raw = None;
    }
}

fn to_errors(diagnostics: Vec<oxc_diagnostics::OxcDiagnostic>) -> Vec<SyntaxError> {
    diagnostics
        .into_iter()
        .map(|d| SyntaxError {
            offset: d.labels.first().map_or(0, |l| l.offset() as usize),
            message: d.message.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip(source: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("helper.ts"), "export const x = 1;").unwrap();
        transpile(&dir.path().join("main.ts"), source).unwrap()
    }

    #[test]
    fn strips_types_and_rewrites_relative_imports() {
        let js = strip(
            "import { x } from './helper';\nimport type { T } from './types';\nexport * from './helper.ts';\n\
             enum Color { Red, Green }\ninterface I { a: number }\nconst n = (x as unknown as number) satisfies number;\n\
             function id<T>(v: T): T { return v }\nexport { Color, n, id };\n",
        );
        assert!(js.contains("from \"./helper.js\""), "{js}");
        assert!(!js.contains("./types"), "{js}");
        assert!(!js.contains("interface"), "{js}");
        assert!(js.contains("Color[Color[\"Red\"] = 0] = \"Red\""), "{js}");
        assert!(js.contains("//# sourceMappingURL=data:application/json;"), "{js}");
    }

    #[test]
    fn syntax_errors_carry_an_offset() {
        let dir = tempfile::tempdir().unwrap();
        let errors = transpile(&dir.path().join("bad.ts"), "const a = ;\n").unwrap_err();
        assert_eq!(errors[0].offset, 10, "{errors:?}");
        assert!(errors[0].message.contains("Unexpected token"), "{errors:?}");
    }
}
