//! Any bytes as a whole SHS message body, in both body forms: splitting never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shsd::protocol::mime::{Limits, split_message};

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_label_bytes: 64 * 1024,
        max_header_bytes: 8 * 1024,
        max_parts: 64,
    };
    // The body's own header block gives the boundary.
    let _ = split_message(data, None, limits.clone());
    // The HTTP header gives the boundary; the first line of the input plays the boundary.
    if let Some(end) = data.iter().position(|&b| b == b'\n') {
        if let Ok(boundary) = std::str::from_utf8(&data[..end]) {
            let content_type = format!("multipart/mixed; boundary=\"{boundary}\"");
            let _ = split_message(&data[end + 1..], Some(&content_type), limits);
        }
    }
});
