//! Integration tests of the engine (one test binary; each area is a module).
//!
//! Expected answers come from `fixtures/expected/*.csv`, written by pandas and DuckDB
//! (`fixtures/make_fixtures.py`), or are computed by hand in the test.

mod common;

mod actions;
mod config;
mod errors;
mod expressions;
mod jobs;
mod joins;
mod out_of_core;
mod reading;
mod transformations;
