// The message log's scrolling: it follows new messages while the reader is
// at its end, and otherwise a "New messages" button says that some wait
// below (and goes there).

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
    log.addEventListener('scroll', () => {
      this.following = log.scrollHeight - log.scrollTop - log.clientHeight <= AT_END_PX;
      if (this.following) button.hidden = true;
    }, { passive: true });
    // The log grew or shrank (the window, the Online bar, the message field): still at its end.
    new ResizeObserver(() => { if (this.following) log.scrollTop = log.scrollHeight; }).observe(log);
    button.addEventListener('click', () => { this.toEnd(); log.focus(); });
  }

  /** Appends `node`: followed to if at the end, else said to wait below. */
  append(node) {
    this.log.append(node);
    if (this.following) this.toEnd();
    else this.button.hidden = false;
  }

  toEnd() {
    this.following = true;
    this.button.hidden = true;
    this.log.scrollTop = this.log.scrollHeight;
  }
}
