//! shsd's integration tests: one test binary, one module per area, a shared harness.

mod cli;
mod crash;
mod harness;
mod interop;
mod roundtrip;
mod store_failure;
