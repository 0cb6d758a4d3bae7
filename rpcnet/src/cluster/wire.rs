//! What travels inside a sealed gossip datagram: foca's SWIM messages, and rpcnet's own
//! push-pull sync and metadata exchange, each naming its sender. Encoded with bincode under
//! a size limit.
//!
//! ```text
//! envelope = sender body-of-message    sender: the gossip address (bincode SocketAddr) of the
//!                                      member that sealed it; refused unless it is the
//!                                      datagram's source, so a copy sent from elsewhere
//!                                      (a replay meant to make a member answer someone
//!                                      else) is refused whatever its kind
//! message = kind:u8 body
//!   0 SWIM        body = foca's message (header, updates, broadcasts)
//!   1 SYNC        body = Sync { reply, members, digest }: push-pull of the member list and
//!                        of the metadata versions known
//!   2 METAS       body = Vec<NodeMeta>: metadata the receiver lacks (or a leave notice)
//!   3 META_WANTED body = Vec<NodeId>: metadata the sender lacks
//!   4 SUMMARY     body = u64: a hash of the sender's whole view; a receiver whose own view
//!                        hashes differently answers with a SYNC asking for a reply
//! ```

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::NodeId;
use super::encoding::config;
pub(crate) use super::encoding::{decode, encode};
use super::meta::NodeMeta;

/// Bytes an envelope adds to a message at most: the sender (an IPv6 address and port) and
/// the kind.
pub(crate) const ENVELOPE_OVERHEAD: usize = 24;

/// A member as SWIM sees it, in a sync message.
pub(crate) type SwimMember = foca::Member<NodeId>;

/// Push-pull state exchange: part of the sender's member list and of its metadata versions.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Sync {
    /// Whether the receiver should answer with its own state (push-pull).
    pub(crate) reply: bool,
    pub(crate) members: Vec<SwimMember>,
    pub(crate) digest: Vec<(NodeId, u64)>,
}

/// One message of the cluster protocol.
#[derive(Debug)]
pub(crate) enum Message {
    Swim(Vec<u8>),
    Sync(Sync),
    Metas(Vec<NodeMeta>),
    MetaWanted(Vec<NodeId>),
    Summary(u64),
}

const SWIM: u8 = 0;
const SYNC: u8 = 1;
const METAS: u8 = 2;
const META_WANTED: u8 = 3;
const SUMMARY: u8 = 4;

impl Message {
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let (kind, body) = match self {
            Self::Swim(bytes) => (SWIM, bytes.clone()),
            Self::Sync(sync) => (SYNC, encode(sync)),
            Self::Metas(metas) => (METAS, encode(metas)),
            Self::MetaWanted(ids) => (META_WANTED, encode(ids)),
            Self::Summary(hash) => (SUMMARY, hash.to_be_bytes().to_vec()),
        };
        let mut out = Vec::with_capacity(1 + body.len());
        out.push(kind);
        out.extend_from_slice(&body);
        out
    }

    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let Some((&kind, body)) = bytes.split_first() else { return Err("empty message".into()) };
        let err = |e: bincode::error::DecodeError| e.to_string();
        Ok(match kind {
            SWIM => Self::Swim(body.to_vec()),
            SYNC => Self::Sync(decode(body).map_err(err)?),
            METAS => Self::Metas(decode(body).map_err(err)?),
            META_WANTED => Self::MetaWanted(decode(body).map_err(err)?),
            SUMMARY => {
                Self::Summary(u64::from_be_bytes(body.try_into().map_err(|_| "summary of the wrong size".to_owned())?))
            }
            other => return Err(format!("unknown message kind {other}")),
        })
    }
}

/// A message and the gossip address of the member that sent it.
#[derive(Debug)]
pub(crate) struct Envelope {
    pub(crate) from: SocketAddr,
    pub(crate) message: Message,
}

impl Envelope {
    /// `message` sent by the member at gossip address `from`.
    pub(crate) fn encode(from: SocketAddr, message: &Message) -> Vec<u8> {
        Self::encode_bytes(from, &message.to_bytes())
    }

    /// An envelope around a message already encoded (kind byte and body).
    pub(crate) fn encode_bytes(from: SocketAddr, message: &[u8]) -> Vec<u8> {
        let mut out = encode(&from);
        out.extend_from_slice(message);
        out
    }

    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let (from, used): (SocketAddr, usize) =
            bincode::serde::decode_from_slice(bytes, config()).map_err(|e| format!("sender: {e}"))?;
        Ok(Self { from, message: Message::from_bytes(&bytes[used..])? })
    }
}

/// foca's codec: its headers and members through bincode.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FocaCodec;

impl foca::Codec<NodeId> for FocaCodec {
    type Error = bincode::error::DecodeError;

    fn encode_header(&mut self, header: &foca::Header<NodeId>, mut buf: impl bytes::BufMut) -> Result<(), Self::Error> {
        buf.put_slice(&encode(header));
        Ok(())
    }

    fn decode_header(&mut self, mut buf: impl bytes::Buf) -> Result<foca::Header<NodeId>, Self::Error> {
        let (header, used) = bincode::serde::decode_from_slice(buf.chunk(), config())?;
        buf.advance(used);
        Ok(header)
    }

    fn encode_member(&mut self, member: &SwimMember, mut buf: impl bytes::BufMut) -> Result<(), Self::Error> {
        buf.put_slice(&encode(member));
        Ok(())
    }

    fn decode_member(&mut self, mut buf: impl bytes::Buf) -> Result<SwimMember, Self::Error> {
        let (member, used) = bincode::serde::decode_from_slice(buf.chunk(), config())?;
        buf.advance(used);
        Ok(member)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_kind_round_trips() {
        let id = NodeId { addr: "127.0.0.1:9".parse().unwrap(), bump: 3 };
        let sync = Message::Sync(Sync { reply: true, members: vec![foca::Member::alive(id)], digest: vec![(id, 2)] });
        match Message::from_bytes(&sync.to_bytes()).unwrap() {
            Message::Sync(back) => {
                assert!(back.reply);
                assert_eq!(back.members[0].id(), &id);
                assert_eq!(back.digest, vec![(id, 2)]);
            }
            other => panic!("got {other:?}"),
        }
        assert!(
            matches!(Message::from_bytes(&Message::MetaWanted(vec![id]).to_bytes()), Ok(Message::MetaWanted(v)) if v == vec![id])
        );
        assert!(Message::from_bytes(&[9, 1, 2]).is_err(), "unknown kinds are errors, not panics");
        assert!(Message::from_bytes(&[]).is_err());
        assert!(Message::from_bytes(&[SYNC, 0xff, 0xff, 0xff]).is_err(), "garbage bodies are errors");
    }

    #[test]
    fn an_envelope_names_its_sender() {
        let from: SocketAddr = "127.0.0.1:7946".parse().unwrap();
        let bytes = Envelope::encode(from, &Message::Summary(42));
        let back = Envelope::from_bytes(&bytes).unwrap();
        assert_eq!(back.from, from);
        assert!(matches!(back.message, Message::Summary(42)));
        assert!(Envelope::from_bytes(&bytes[..3]).is_err(), "a truncated sender is an error, not a panic");
        assert!(Envelope::from_bytes(&[]).is_err());
    }
}
