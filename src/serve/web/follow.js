// The message logs' scrolling: each follows new messages while the reader
// is at its end, and otherwise a "New messages" button says that some wait
// below (and goes there). One button serves every log (the lobby's and each
// room's): it speaks for the log on screen.

/** The log this close to its end (CSS pixels) is at its end. */
const AT_END_PX = 24;

export class Follower {
  constructor(log, button) {
    this.log = log;
    this.button = button;
    /**
     * Whether the log was at its end when last scrolled. Known from the
     * last scroll, not measured when a message comes: the layout may have
     * changed since (the Online bar filled in, the keyboard opened), which
     * a measure then would take for the reader scrolling away.
     */
    this.following = true;
    /**
     * Where the log was scrolled to when last seen (by a scroll event, or
     * put by this follower). Only a move towards older messages leaves the
     * end: a scroll event is dispatched before the frame's layout and its
     * ResizeObserver callbacks, so one pending from the last follow (say)
     * may measure the log already shrunk by the outbox showing (alice's own
     * message), the follow that keeps it at its end not done yet.
     */
    this.top = log.scrollTop;
    log.addEventListener('scroll', () => {
      const top = log.scrollTop;
      if (log.scrollHeight - top - log.clientHeight <= AT_END_PX) this.following = true;
      else if (top < this.top) this.following = false;
      this.top = top;
      if (this.following) button.hidden = true;
    }, { passive: true });
    // The log grew or shrank (the window, the Online bar, the outbox, the message field): still at its end.
    new ResizeObserver(() => { if (this.following) this.scrollToEnd(); }).observe(log);
    button.addEventListener('click', () => {
      if (this.onScreen()) { this.toEnd(); log.focus(); }
    });
  }

  /** Appends `node`: followed to if at the end, else said to wait below. */
  append(node) {
    this.log.append(node);
    if (this.following) this.toEnd();
    else if (this.onScreen()) this.button.hidden = false;
  }

  /** Whether this log is the one shown (a room's log is hidden while another is open). */
  onScreen() {
    return this.log.closest('[hidden]') === null;
  }

  toEnd() {
    this.following = true;
    if (this.onScreen()) this.button.hidden = true;
    this.scrollToEnd();
  }

  scrollToEnd() {
    this.log.scrollTop = this.log.scrollHeight;
    this.top = this.log.scrollTop;
  }
}

const followers = new WeakMap();

/** The follower of `log`, made when first needed. */
export function followerOf(log, button) {
  let follower = followers.get(log);
  if (!follower) {
    follower = new Follower(log, button);
    followers.set(log, follower);
  }
  return follower;
}
