// The few DOM helpers every part of the page uses. Text is always set as
// textContent, never as HTML.

/** A `tag` element with `className` and, if given, `text`. */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** A button (never a form's submit) saying `text`. */
export function button(text, className = 'quiet') {
  const node = el('button', className, text);
  node.type = 'button';
  return node;
}
