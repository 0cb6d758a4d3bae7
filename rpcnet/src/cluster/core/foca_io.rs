//! The adapter between foca and the core: foca's sends, timers and notifications of one
//! call are collected into an `Io`, which the core then turns into sealed datagrams,
//! scheduled timers and membership bookkeeping.

use std::time::Duration;

use foca::{Notification, Runtime, Timer};

use crate::cluster::NodeId;

/// foca's outputs of one call, collected.
#[derive(Default)]
pub(super) struct Io {
    pub(super) sends: Vec<(NodeId, Vec<u8>)>,
    pub(super) timers: Vec<(Timer<NodeId>, Duration)>,
    pub(super) notes: Vec<Note>,
}

#[derive(Debug)]
pub(super) enum Note {
    Up(NodeId),
    Down(NodeId),
    Rename(NodeId, NodeId),
    Defunct,
    Rejoin(NodeId),
}

impl Runtime<NodeId> for Io {
    fn notify(&mut self, notification: Notification<'_, NodeId>) {
        let note = match notification {
            Notification::MemberUp(id) => Note::Up(*id),
            Notification::MemberDown(id) => Note::Down(*id),
            Notification::Rename(old, new) => Note::Rename(*old, *new),
            Notification::Defunct => Note::Defunct,
            Notification::Rejoin(id) => Note::Rejoin(*id),
            _ => return,
        };
        self.notes.push(note);
    }

    fn send_to(&mut self, to: NodeId, data: &[u8]) {
        self.sends.push((to, data.to_vec()));
    }

    fn submit_after(&mut self, event: Timer<NodeId>, after: Duration) {
        self.timers.push((event, after));
    }
}
