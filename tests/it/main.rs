//! shsd's integration tests: one test binary, one module per area, a shared harness.

mod authorisation;
mod check;
mod endpoints;
mod filters;
mod harness;
mod malformed;
mod interop;
mod limits;
mod roundtrip;
