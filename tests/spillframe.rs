//! Integration tests of the whole system: the command line, data generation, the demo and the
//! differential SQL corpus (`tests/sql`, run in every mode).

mod bad_input;
mod cli;
mod cluster;
mod common;
mod corpus;
mod crash;
mod datafusion_suite;
mod datagen;
mod demo;
mod docs;
mod memory;
