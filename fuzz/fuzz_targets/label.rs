//! Any bytes as an `shs.label`: parsing never panics, and whatever parses writes back to
//! a label that parses to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shsd::protocol::label::Label;

fuzz_target!(|data: &[u8]| {
    if let Ok(label) = Label::parse(data) {
        let written = label.to_xml();
        let again = Label::parse(&written).expect("a written label parses");
        assert_eq!(again, label);
        let _ = shsd::protocol::validate::check_label(&label);
    }
});
