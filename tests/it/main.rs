//! shsd's integration tests: one test binary, one module per area, a shared harness.

mod admin;
mod admin_actions;
mod admin_api;
mod admin_mtls;
mod authorisation;
mod check;
mod cli;
mod console;
mod crash;
mod directory;
mod duplicates;
mod endpoints;
mod filters;
mod harness;
mod interop;
mod ldap;
mod limits;
mod malformed;
mod push;
mod roundtrip;
mod routing;
mod store_failure;
mod systemd;
mod two_nodes;
