//! The chat room: members on their own threads, each with a bounded inbox
//! that the others post to.

use crate::session::{self, timed_out};
use crate::Limits;
use keel::Upgraded;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, WebSocket};

/// Messages waiting for one member; a member that falls this far behind
/// is dropped rather than make the room hold more for it.
const INBOX: usize = 64;
/// How often a member's thread stops reading to deliver its inbox: the
/// most a message waits in an inbox while its reader is quiet.
const TICK: Duration = Duration::from_millis(20);

/// One chat room: who is in it, and how to reach each.
#[derive(Default)]
pub struct Room {
    members: Mutex<Vec<Member>>,
    next_id: AtomicU64,
}

struct Member {
    id: u64,
    inbox: SyncSender<Message>,
}

impl Room {
    /// Runs one member's session on this thread until it leaves: its
    /// messages go to the others; theirs come to it.
    pub fn serve(&self, stream: Upgraded, limits: Limits) {
        let Ok(mut ws) = session::open(stream, limits, TICK) else {
            return;
        };
        let (id, inbox, here) = self.join();
        let welcome = format!("* you are guest-{id}; {here} here");
        if ws.send(Message::text(welcome)).is_ok() {
            self.post(id, Message::text(format!("* guest-{id} joined")));
            self.relay(id, ws, &inbox, limits.idle);
        }
        self.leave(id);
        self.post(id, Message::text(format!("* guest-{id} left")));
    }

    /// Relays until the member leaves, fails, idles out or falls behind.
    fn relay(
        &self,
        id: u64,
        mut ws: WebSocket<Upgraded>,
        inbox: &Receiver<Message>,
        idle: Duration,
    ) {
        let mut heard = Instant::now();
        loop {
            match ws.read() {
                Ok(Message::Text(text)) => {
                    heard = Instant::now();
                    self.post(id, Message::text(format!("guest-{id}: {}", text.as_str())));
                }
                Ok(binary @ Message::Binary(_)) => {
                    heard = Instant::now();
                    self.post(id, binary);
                }
                Ok(_) => heard = Instant::now(),
                Err(error) if timed_out(&error) && heard.elapsed() < idle => {}
                Err(error) => return session::end(ws, &error),
            }
            loop {
                match inbox.try_recv() {
                    Ok(message) => {
                        if ws.write(message).is_err() {
                            return;
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    // The room dropped this member: it fell too far behind.
                    Err(TryRecvError::Disconnected) => {
                        return session::close(ws, CloseCode::Policy, "too slow");
                    }
                }
            }
            if ws.flush().is_err() {
                return;
            }
        }
    }

    /// Adds a member; returns its id, its inbox and how many are here now.
    fn join(&self) -> (u64, Receiver<Message>, usize) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let (inbox, receiver) = mpsc::sync_channel(INBOX);
        let mut members = self.members.lock().unwrap_or_else(|e| e.into_inner());
        members.push(Member { id, inbox });
        (id, receiver, members.len())
    }

    fn leave(&self, id: u64) {
        let mut members = self.members.lock().unwrap_or_else(|e| e.into_inner());
        members.retain(|m| m.id != id);
    }

    /// Gives `message` to every member but `from`, never waiting: a member
    /// whose inbox is full is dropped from the room (its thread then closes
    /// it), so one slow reader costs the others nothing.
    fn post(&self, from: u64, message: Message) {
        let mut members = self.members.lock().unwrap_or_else(|e| e.into_inner());
        members.retain(|m| {
            m.id == from
                || !matches!(
                    m.inbox.try_send(message.clone()),
                    Err(TrySendError::Full(_) | TrySendError::Disconnected(_))
                )
        });
    }
}
