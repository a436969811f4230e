//! A TCP byte stream: the input is cut into chunks (its first byte picks the chunk size, so libFuzzer explores
//! messages split at every boundary), pushed into the framer, and every framed message goes to the stream parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oncall_sip::transport::framing::StreamFramer;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, stream)) = data.split_first() else {
        return;
    };
    let chunk = (chunk as usize % 64) + 1;
    let mut framer = StreamFramer::new();
    for piece in stream.chunks(chunk) {
        framer.push(piece);
        // A framing error closes the connection in the server: stop feeding this stream too.
        loop {
            match framer.next_message() {
                Ok(Some(message)) => {
                    let _ = oncall_sip::message::parse_stream_message(&message);
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});
