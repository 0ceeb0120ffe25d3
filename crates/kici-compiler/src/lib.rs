//! The workflow compiler: TypeScript under `.kici/` to JavaScript with oxc, workflow evaluation
//! through the Node runner, lock-file generation and validation. Used by `kici` (compile, run
//! local) and by the agent (which stages and runs the same tree).
//!
//! Map: [`project`] finds the files, [`transpile`] strips one file, [`stage`] builds the tree
//! Node loads, [`runner`] drives a Node runner process, [`describe`] asks it what the modules
//! export, [`lockgen`] turns that into a lock file with [`diagnostic`]s, [`compile`] ties them
//! together.

pub mod compile;
pub mod deps;
pub mod describe;
pub mod diagnostic;
pub mod evaluate;
pub mod hash_files;
pub mod lockgen;
pub mod project;
pub mod purity;
pub mod runner;
pub mod stage;
pub mod transpile;
