//! XML for signatures: a namespace-aware tree that keeps what canonicalisation needs, and
//! the canonicalisers over it.

pub(crate) mod c14n;
pub(crate) mod reuse;
mod tokenizer;
pub(crate) mod tree;

#[cfg(test)]
mod c14n_tests;
