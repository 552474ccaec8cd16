//! The `shs.message-list` 1.2.01 document answered by list requests (spec §3.3).
