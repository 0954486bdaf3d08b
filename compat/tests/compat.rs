//! Integration tests of spillframe-compat: conformance against pandas (in memory and out of
//! core), the registry against pandas' API list, the generated docs, and errors.

#[path = "compat/conformance.rs"]
mod conformance;
#[path = "compat/errors.rs"]
mod errors;
#[path = "compat/registry.rs"]
mod registry;
