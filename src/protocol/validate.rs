//! The intake rules of spec §4.2, each failure mapped to its SHS error code.
