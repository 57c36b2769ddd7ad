//! Typed request bookkeeping, the one copy every app uses.
//!
//! An app asks through [`Requests`]: a bus call, or a question to the user in a dialog.
//! Each ask names the app's own message to make of the answer, so the answer arrives
//! decoded as the reply type of the call that asked (`C::Answer`), already turned into
//! that message: no app keeps a map of pending tickets or decodes `Value`s by hand.

use std::collections::HashMap;

use aether_proto::ErrorBody;
use aether_proto::api::Call;

use crate::app::{Effect, Event, Payload, Ticket, Tickets, decode};

/// The answer to call `C`, as an app's message carries it.
pub type Answer<C> = Result<<C as Call>::Answer, ErrorBody>;

/// What may come back for a ticket.
enum Reply {
    Answer(Result<Payload, ErrorBody>),
    Confirmed(bool),
    Chose(Option<usize>),
    Prompted(Option<String>),
}

/// Makes the app's message from a reply; `None` when the reply is not the kind asked for.
type Route<M> = Box<dyn FnOnce(Reply) -> Option<M>>;

/// The asks an app still waits for, each with the message its answer becomes.
pub struct Requests<M> {
    tickets: Tickets,
    waiting: HashMap<Ticket, Route<M>>,
}

impl<M: 'static> Default for Requests<M> {
    fn default() -> Self {
        Requests {
            tickets: Tickets::default(),
            waiting: HashMap::new(),
        }
    }
}

impl<M: 'static> Requests<M> {
    pub fn new() -> Self {
        Self::default()
    }

    /// A ticket no answer is routed for: a subscription's, matched by the app itself.
    pub fn ticket(&mut self) -> Ticket {
        self.tickets.issue()
    }

    fn wait(&mut self, route: Route<M>) -> Ticket {
        let ticket = self.tickets.issue();
        self.waiting.insert(ticket, route);
        ticket
    }

    /// A subscription to `pattern`: its ticket (deliveries carry it; the app matches
    /// them itself) and the effect that makes it.
    pub fn subscribe(&mut self, pattern: &str) -> (Ticket, Effect) {
        let ticket = self.tickets.issue();
        let effect = Effect::Subscribe {
            ticket,
            pattern: pattern.to_owned(),
        };
        (ticket, effect)
    }

    /// A bus request; its answer comes back as `route(answer)`.
    pub fn call<C: Call>(
        &mut self,
        call: &C,
        route: impl FnOnce(Result<C::Answer, ErrorBody>) -> M + 'static,
    ) -> Effect {
        let ticket = self.wait(Box::new(|reply| match reply {
            Reply::Answer(result) => Some(route(decode::<C>(result))),
            _ => None,
        }));
        Effect::request(ticket, call)
    }

    /// Yes or no in a dialog.
    pub fn confirm(
        &mut self,
        question: impl Into<String>,
        route: impl FnOnce(bool) -> M + 'static,
    ) -> Effect {
        let ticket = self.wait(Box::new(|reply| match reply {
            Reply::Confirmed(yes) => Some(route(yes)),
            _ => None,
        }));
        Effect::Confirm {
            ticket,
            question: question.into(),
        }
    }

    /// One of a few options (`None`: cancelled).
    pub fn choose(
        &mut self,
        question: impl Into<String>,
        options: Vec<String>,
        route: impl FnOnce(Option<usize>) -> M + 'static,
    ) -> Effect {
        let ticket = self.wait(chose(route));
        Effect::Choose {
            ticket,
            question: question.into(),
            options,
        }
    }

    /// A decision reviewed in full before it is made (see [`Effect::Review`]).
    pub fn review(
        &mut self,
        question: impl Into<String>,
        detail: String,
        options: Vec<String>,
        route: impl FnOnce(Option<usize>) -> M + 'static,
    ) -> Effect {
        let ticket = self.wait(chose(route));
        Effect::Review {
            ticket,
            question: question.into(),
            detail,
            options,
        }
    }

    /// One line of text (`None`: cancelled); `secret` shows it as dots.
    pub fn prompt(
        &mut self,
        question: impl Into<String>,
        initial: impl Into<String>,
        secret: bool,
        route: impl FnOnce(Option<String>) -> M + 'static,
    ) -> Effect {
        let ticket = self.wait(Box::new(|reply| match reply {
            Reply::Prompted(text) => Some(route(text)),
            _ => None,
        }));
        Effect::Prompt {
            ticket,
            question: question.into(),
            initial: initial.into(),
            secret,
        }
    }

    /// The app's message for an event that answers one of its asks: `Ok(Some(message))`,
    /// `Ok(None)` for a reply that is no longer (or never was) awaited, and the event
    /// back (`Err`) when it is not a reply at all (keys, deliveries, …).
    pub fn reply(&mut self, event: Event) -> Result<Option<M>, Event> {
        let (ticket, reply) = match event {
            Event::Answer { ticket, result } => (ticket, Reply::Answer(result)),
            Event::Confirmed { ticket, yes } => (ticket, Reply::Confirmed(yes)),
            Event::Chose { ticket, index } => (ticket, Reply::Chose(index)),
            Event::Prompted { ticket, text } => (ticket, Reply::Prompted(text)),
            other => return Err(other),
        };
        Ok(self.waiting.remove(&ticket).and_then(|route| route(reply)))
    }
}

fn chose<M: 'static>(route: impl FnOnce(Option<usize>) -> M + 'static) -> Route<M> {
    Box::new(|reply| match reply {
        Reply::Chose(index) => Some(route(index)),
        _ => None,
    })
}

/// An app that asks through [`Requests`]: its replies arrive as its own messages
/// ([`Replies::on`]), every other event (keys, deliveries, …) at [`Replies::on_event`];
/// [`route`] sorts them, so an app's `App::update` is `app_kit::route(self, event)`.
pub trait Replies {
    type Msg: 'static;

    fn requests(&mut self) -> &mut Requests<Self::Msg>;

    /// A reply to one of the app's asks, as the message the ask named.
    fn on(&mut self, msg: Self::Msg) -> Vec<Effect>;

    /// Any other event.
    fn on_event(&mut self, event: Event) -> Vec<Effect>;
}

/// Something an app asked the daemon for: loading, there, or why not.
#[derive(Debug, Clone, Default)]
pub enum Loaded<T> {
    #[default]
    Loading,
    Ready(T),
    Failed(String),
}

/// The part of an app's [`Replies`] that is the same for every app: its message type
/// and where its [`Requests`] are: `app_kit::replies_through!(requests: Msg);`.
#[macro_export]
macro_rules! replies_through {
    ($field:ident: $msg:ty) => {
        type Msg = $msg;

        fn requests(&mut self) -> &mut $crate::Requests<$msg> {
            &mut self.$field
        }
    };
}

/// Hand a reply to [`Replies::on`] (a stale one to nobody), anything else to
/// [`Replies::on_event`].
pub fn route<A: Replies>(app: &mut A, event: Event) -> Vec<Effect> {
    match app.requests().reply(event) {
        Ok(Some(msg)) => app.on(msg),
        Ok(None) => Vec::new(),
        Err(event) => app.on_event(event),
    }
}

/// Counts asks of one kind so that only the newest answer counts: a list asked for
/// twice (a refresh while the first is under way) is drawn from the second answer only.
#[derive(Debug, Default, Clone, Copy)]
pub struct Latest {
    asked: u64,
    waiting: bool,
}

impl Latest {
    /// A new ask: its number, to carry in the message.
    pub fn ask(&mut self) -> u64 {
        self.asked += 1;
        self.waiting = true;
        self.asked
    }

    /// Whether the answer to ask `n` is the one wanted; it is taken (a second answer to
    /// the same ask is not).
    pub fn take(&mut self, n: u64) -> bool {
        let wanted = self.waiting && self.asked == n;
        if wanted {
            self.waiting = false;
        }
        wanted
    }

    /// No answer asked for so far is wanted any more.
    pub fn forget(&mut self) {
        self.asked += 1;
        self.waiting = false;
    }

    /// An ask is under way (for "loading…").
    pub fn waiting(&self) -> bool {
        self.waiting
    }
}

#[cfg(test)]
mod tests {
    use aether_proto::ErrorCode;
    use aether_proto::api::sys;

    use super::*;

    #[derive(Debug, PartialEq)]
    enum Msg {
        Me(Result<String, String>),
        Sure(bool),
    }

    fn whoami(requests: &mut Requests<Msg>) -> Ticket {
        match requests.call(&sys::Whoami {}, |answer| {
            Msg::Me(answer.map(|me| me.user.name).map_err(|e| e.msg))
        }) {
            Effect::Request { ticket, topic, .. } => {
                assert_eq!(topic, sys::Whoami::TOPIC);
                ticket
            }
            other => panic!("a request, not {other:?}"),
        }
    }

    #[test]
    fn an_answer_arrives_decoded_as_the_asking_calls_reply() {
        let mut requests = Requests::new();
        let ticket = whoami(&mut requests);
        let json = r#"{"user":{"id":1,"name":"ana"},"app":"files","bound_app":null}"#;
        let answer = Event::Answer {
            ticket,
            result: Ok(Payload::new(json)),
        };
        let routed = requests.reply(answer.clone()).ok().flatten();
        assert_eq!(routed, Some(Msg::Me(Ok("ana".into()))));
        // Answered once: the same ticket again is stale and dropped.
        assert_eq!(requests.reply(answer).ok(), Some(None));
    }

    #[test]
    fn an_error_or_an_undecodable_answer_is_the_calls_error() {
        let mut requests = Requests::new();
        let ticket = whoami(&mut requests);
        let error = ErrorBody::new(ErrorCode::Forbidden, "no");
        let routed = requests.reply(Event::Answer {
            ticket,
            result: Err(error),
        });
        assert_eq!(routed.ok().flatten(), Some(Msg::Me(Err("no".into()))));

        let ticket = whoami(&mut requests);
        let routed = requests.reply(Event::Answer {
            ticket,
            result: Ok(Payload::new("[1, 2]")),
        });
        let Some(Msg::Me(Err(why))) = routed.ok().flatten() else {
            panic!("an undecodable answer is an error");
        };
        assert!(why.contains(sys::Whoami::TOPIC), "{why}");
    }

    #[test]
    fn dialogs_route_their_own_reply_kind_and_other_events_come_back() {
        let mut requests = Requests::new();
        let Effect::Confirm { ticket, .. } = requests.confirm("sure?", Msg::Sure) else {
            panic!("a confirm");
        };
        // A reply of another kind for this ticket is not the answer: dropped.
        let wrong = Event::Prompted { ticket, text: None };
        assert_eq!(requests.reply(wrong).ok(), Some(None));

        let Effect::Confirm { ticket, .. } = requests.confirm("sure?", Msg::Sure) else {
            panic!("a confirm");
        };
        let yes = requests.reply(Event::Confirmed { ticket, yes: true });
        assert_eq!(yes.ok().flatten(), Some(Msg::Sure(true)));
        assert!(matches!(
            requests.reply(Event::Reconnected),
            Err(Event::Reconnected)
        ));
    }

    #[test]
    fn only_the_newest_ask_counts_once() {
        let mut latest = Latest::default();
        let first = latest.ask();
        let second = latest.ask();
        assert!(latest.waiting());
        assert!(!latest.take(first));
        assert!(latest.take(second));
        assert!(!latest.waiting());
        assert!(!latest.take(second), "taken once");
        let third = latest.ask();
        latest.forget();
        assert!(!latest.take(third) && !latest.waiting());
    }
}
