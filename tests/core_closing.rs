//! Rule 11: a closed connection leaves nothing behind but its login's
//! reservation, and nothing is ever sent to it — even when it closes while
//! actions for it are still queued. The harness fails any test in which an
//! action names a closed connection.

mod common;

use common::*;
use wschat::{CloseCode, Event, Inbound};

const HI_FROM_ALICE: &str =
    r#"{"type":"textBroadcast","id":"*","username":"alice","message":"hi"}"#;

#[test]
fn a_connection_closing_between_a_broadcast_and_the_drain_gets_none_of_it() {
    let mut h = Harness::default();
    let a = h.logged_in("alice");
    let b = h.logged_in("bob");
    let c = h.logged_in("carol");
    h.say(a, "hi");
    h.close(b);
    assert_eq!(h.drain(), broadcast(&[a, c], HI_FROM_ALICE));
}

#[test]
fn a_connection_closing_mid_login_gets_no_reply_but_keeps_its_name_reserved() {
    let mut h = Harness::default();
    let a = h.open();
    let b = h.open();
    h.login(a, "alice");
    h.close(a);
    // The others still learn of the login; the reply to the closed one is dropped.
    assert_eq!(
        h.drain(),
        [send(
            b,
            r#"{"type":"loginBroadcast","id":"*","username":"alice","location":"127.0.0.1"}"#
        )]
    );
    h.login(b, "ALICE");
    assert_eq!(
        h.drain(),
        [error(
            b,
            "loginTaken",
            r#"the name "alice" is taken; give its secret to reclaim it, or pick another"#
        )]
    );
}
