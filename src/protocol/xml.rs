//! Shared XML helpers: encoding from the XML declaration, entity refusal, escaping.
