//! Integration tests of the whole system: the command line, data generation and the demo.

mod cli;
mod cluster;
mod common;
mod crash;
mod datagen;
mod demo;
mod docs;
mod memory;
