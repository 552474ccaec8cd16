//! The streaming reader gives the same result whatever the chunking of its input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shsd::protocol::mime::{Event, Limits, MessageReader, split_message};

fuzz_target!(|input: (u8, &[u8])| {
    let (chunk, data) = input;
    let chunk = usize::from(chunk.max(1));
    let whole = split_message(data, None, Limits::default());

    let Ok(mut reader) = MessageReader::new(None, Limits::default()) else {
        return;
    };
    let mut parts: Vec<Vec<u8>> = Vec::new();
    let mut label = None;
    let mut chunks = data.chunks(chunk);
    let mut finished = false;
    let streamed = loop {
        match reader.next_event() {
            Ok(Event::NeedMore) => match chunks.next() {
                Some(piece) => reader.push(piece),
                None if !finished => {
                    reader.finish();
                    finished = true;
                }
                None => panic!("the reader asked for more input after finish"),
            },
            Ok(Event::Label { body, .. }) => label = Some(body),
            Ok(Event::PartStart { .. }) => parts.push(Vec::new()),
            Ok(Event::PartData(bytes)) => {
                if let Some(last) = parts.last_mut() {
                    last.extend_from_slice(bytes);
                }
            }
            Ok(Event::PartEnd) => {}
            Ok(Event::End) => break Ok(()),
            Err(err) => break Err(err),
        }
    };
    match (whole, streamed) {
        (Ok(split), Ok(())) => {
            assert_eq!(Some(split.label), label);
            let raw: Vec<Vec<u8>> = split.parts.into_iter().map(|(_, bytes)| bytes).collect();
            assert_eq!(raw, parts);
        }
        (Err(a), Err(b)) => assert_eq!(a.code(), b.code()),
        (a, b) => panic!("whole {:?} vs streamed {:?}", a.map(|_| ()), b),
    }
});
