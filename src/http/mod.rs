//! The SHS endpoints (spec §3) over hyper: routing, one handler per endpoint, and the one
//! place where errors become HTTP responses.

pub mod endpoint;
pub mod error;
pub mod handlers;
pub mod query;
pub mod server;

pub use server::Server;
