//! Whether a job's `environment` or `env` function is pure enough for the orchestrator to
//! evaluate it from its source text (`authoring.md` §1.7): one synchronous arrow or function
//! expression that uses only its parameters, its own locals and the safe globals, without
//! `this`, `new`, classes, `throw`, `try`, `delete`, `var`, `yield`, `await`, assignments or
//! `++`/`--`. Anything else needs an init job on an agent.

use oxc_allocator::Allocator;
use oxc_ast::ast::{
    ArrowFunctionExpression, AssignmentExpression, AwaitExpression, Class, Expression, Function, NewExpression,
    Statement, ThisExpression, ThrowStatement, TryStatement, UnaryExpression, UpdateExpression, VariableDeclaration,
    VariableDeclarationKind, YieldExpression,
};
use oxc_ast_visit::Visit;
use oxc_parser::Parser;
use oxc_semantic::SemanticBuilder;
use oxc_span::SourceType;
use oxc_syntax::operator::UnaryOperator;

/// The globals a pure function may use.
const SAFE_GLOBALS: &[&str] = &[
    "String",
    "Number",
    "Boolean",
    "Array",
    "Object",
    "JSON",
    "Math",
    "parseInt",
    "parseFloat",
    "isNaN",
    "isFinite",
    "encodeURI",
    "encodeURIComponent",
    "decodeURI",
    "decodeURIComponent",
    "undefined",
    "NaN",
    "Infinity",
];

/// `Ok` when `source` (a function's `toString()`) is pure; otherwise why not, e.g. `it uses
/// the global 'process'`.
pub fn check(source: &str) -> Result<(), String> {
    let allocator = Allocator::default();
    let wrapped = format!("const __kici_value = (\n{source}\n);");
    let parsed = Parser::new(&allocator, &wrapped, SourceType::mjs()).parse();
    if parsed.panicked || !parsed.diagnostics.is_empty() {
        return Err("its source is not a function expression".to_string());
    }
    let program = parsed.program;
    let Some(Statement::VariableDeclaration(declaration)) = program.body.first() else {
        return Err("its source is not a function expression".to_string());
    };
    let init = declaration.declarations.first().and_then(|d| d.init.as_ref());
    match init.map(Expression::without_parentheses) {
        Some(Expression::ArrowFunctionExpression(arrow)) if arrow.r#async => {
            return Err("it is async".to_string());
        }
        Some(Expression::FunctionExpression(function)) if function.r#async || function.generator => {
            return Err("it is async or a generator".to_string());
        }
        Some(Expression::ArrowFunctionExpression(_) | Expression::FunctionExpression(_)) => {}
        _ => return Err("its source is not a function expression".to_string()),
    }
    let semantic = SemanticBuilder::new().build(&program).semantic;
    let mut globals: Vec<&str> = semantic
        .scoping()
        .root_unresolved_references()
        .keys()
        .map(|name| name.as_str())
        .filter(|name| !SAFE_GLOBALS.contains(name))
        .collect();
    globals.sort_unstable();
    if let Some(global) = globals.first() {
        return Err(format!("it uses the global '{global}'"));
    }
    let mut finder = Forbidden::default();
    finder.visit_program(&program);
    match finder.found {
        Some(construct) => Err(format!("it uses {construct}")),
        None => Ok(()),
    }
}

/// The first construct a pure function may not contain.
#[derive(Default)]
struct Forbidden {
    found: Option<&'static str>,
    /// Functions entered: the outermost one is the value itself.
    depth: usize,
}

impl Forbidden {
    fn mark(&mut self, construct: &'static str) {
        self.found.get_or_insert(construct);
    }
}

impl<'a> Visit<'a> for Forbidden {
    fn visit_this_expression(&mut self, _: &ThisExpression) {
        self.mark("`this`");
    }
    fn visit_new_expression(&mut self, _: &NewExpression<'a>) {
        self.mark("`new`");
    }
    fn visit_class(&mut self, _: &Class<'a>) {
        self.mark("a class");
    }
    fn visit_throw_statement(&mut self, _: &ThrowStatement<'a>) {
        self.mark("`throw`");
    }
    fn visit_try_statement(&mut self, _: &TryStatement<'a>) {
        self.mark("`try`");
    }
    fn visit_yield_expression(&mut self, _: &YieldExpression<'a>) {
        self.mark("`yield`");
    }
    fn visit_await_expression(&mut self, _: &AwaitExpression<'a>) {
        self.mark("`await`");
    }
    fn visit_assignment_expression(&mut self, _: &AssignmentExpression<'a>) {
        self.mark("an assignment");
    }
    fn visit_update_expression(&mut self, _: &UpdateExpression<'a>) {
        self.mark("`++` or `--`");
    }
    fn visit_unary_expression(&mut self, it: &UnaryExpression<'a>) {
        if it.operator == UnaryOperator::Delete {
            self.mark("`delete`");
        }
        oxc_ast_visit::walk::walk_unary_expression(self, it);
    }
    fn visit_variable_declaration(&mut self, it: &VariableDeclaration<'a>) {
        // The wrapper's own `const` is not the function's.
        if self.depth > 0 && it.kind == VariableDeclarationKind::Var {
            self.mark("`var`");
        }
        oxc_ast_visit::walk::walk_variable_declaration(self, it);
    }
    fn visit_arrow_function_expression(&mut self, it: &ArrowFunctionExpression<'a>) {
        self.depth += 1;
        oxc_ast_visit::walk::walk_arrow_function_expression(self, it);
        self.depth -= 1;
    }
    fn visit_function(&mut self, it: &Function<'a>, flags: oxc_syntax::scope::ScopeFlags) {
        if it.generator || it.r#async {
            self.mark("an async function or a generator");
        }
        self.depth += 1;
        oxc_ast_visit::walk::walk_function(self, it, flags);
        self.depth -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pure_functions_pass() {
        for source in [
            "(event) => event.targetBranch === 'main' ? 'production' : 'staging'",
            "(event) => ({ DEPLOY_TARGET: event.targetBranch === 'main' ? 'prod' : 'stg' })",
            "function (event) { const b = event.targetBranch; return b.startsWith('release/') ? 'staging' : String(b); }",
            "(e) => JSON.stringify(Object.keys(e).map((k) => k.toUpperCase()))",
        ] {
            assert_eq!(check(source), Ok(()), "{source}");
        }
    }

    #[test]
    fn impure_functions_say_why() {
        let cases = [
            ("(e) => process.env.TARGET", "it uses the global 'process'"),
            ("async (e) => 'x'", "it is async"),
            ("(e) => { let x = 1; x = 2; return x; }", "it uses an assignment"),
            ("(e) => { var x = 1; return x; }", "it uses `var`"),
            ("(e) => new Date().toISOString()", "it uses the global 'Date'"),
            ("function (e) { return this.x; }", "it uses `this`"),
            ("(e) => { throw new Error('x') }", "it uses the global 'Error'"),
            ("(e) => { try { return 1 } catch { return 2 } }", "it uses `try`"),
            ("(e) => { delete e.x; return 'a' }", "it uses `delete`"),
            ("(e) => { let i = 0; i++; return i }", "it uses `++` or `--`"),
            ("env(event) { return {} }", "its source is not a function expression"),
            ("42", "its source is not a function expression"),
        ];
        for (source, reason) in cases {
            assert_eq!(check(source), Err(reason.to_string()), "{source}");
        }
    }
}
