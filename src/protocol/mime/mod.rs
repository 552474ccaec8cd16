//! The streaming multipart reader and writer for SHS messages (spec §3.1, §4.1).
