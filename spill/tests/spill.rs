//! Integration tests of the spill crate (one test binary; each area is a module).

mod dir;
mod file;
mod governor;
mod remote;
mod store;
