//! `shs.management` confirm and error documents and the reply-label builder (spec §4.4).
