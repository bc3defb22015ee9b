mod common;

use common::*;

#[test]
fn login_broadcasts_before_replying_and_text_reaches_everyone() {
    let mut h = Harness::default();
    let a = h.open();
    let b = h.open();
    h.login(a, "alice");
    assert_eq!(
        h.drain(),
        [
            send(
                a,
                r#"{"type":"loginBroadcast","id":"*","username":"alice","location":"127.0.0.1"}"#
            ),
            send(
                b,
                r#"{"type":"loginBroadcast","id":"*","username":"alice","location":"127.0.0.1"}"#
            ),
            send(
                a,
                r#"{"type":"loginMessage","id":"*","username":"alice","location":"127.0.0.1","secret":"<secret>"}"#
            ),
        ]
    );
    h.say(a, "hello world");
    assert_eq!(
        h.drain(),
        [
            send(
                a,
                r#"{"type":"textBroadcast","id":"*","username":"alice","message":"hello world"}"#
            ),
            send(
                b,
                r#"{"type":"textBroadcast","id":"*","username":"alice","message":"hello world"}"#
            ),
        ]
    );
}
