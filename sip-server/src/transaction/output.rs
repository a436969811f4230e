//! What a transaction hands back while handling one input: bytes to send and [`TxEvent`]s for the user
//! agent core. Its own module so the client and server transactions (`client.rs`, `server.rs`) fill it
//! without importing the transaction layer (`mod.rs`), which collects it.

use super::key::TxKey;
use super::peer::Peer;
use crate::message::{Request, Response};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxEvent {
    /// A new request (not a retransmission): a server transaction was created under `key`.
    Request { key: TxKey, request: Request, source: Peer },
    /// An ACK that matches no server transaction: the ACK of a 2xx, for the dialog layer.
    Ack { request: Request, source: Peer },
    /// A response for a client transaction.
    Response { key: TxKey, response: Response },
    /// Timer B or F fired (no final response), or Timer H fired (no ACK for a final response).
    Timeout { key: TxKey },
}

/// Output collected by a transaction while handling one input.
#[derive(Default)]
pub(crate) struct Out {
    pub transmits: Vec<(Peer, Vec<u8>)>,
    pub events: Vec<TxEvent>,
}
