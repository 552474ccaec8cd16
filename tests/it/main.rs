//! shsd's integration tests: one test binary, one module per area, a shared harness.

mod admin;
mod admin_api;
mod authorisation;
mod check;
mod cli;
mod crash;
mod duplicates;
mod endpoints;
mod filters;
mod harness;
mod interop;
mod limits;
mod malformed;
mod roundtrip;
mod routing;
mod signatures;
mod store_failure;
mod systemd;
