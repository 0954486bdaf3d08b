//! Integration tests of spillframe-compat: conformance against pandas (in memory and out of
//! core), the registry against pandas' API list, the generated docs, and errors.

#[path = "compat/conformance.rs"]
mod conformance;
#[path = "compat/errors.rs"]
mod errors;
#[path = "compat/out_of_core.rs"]
mod out_of_core;
#[path = "compat/registry.rs"]
mod registry;
