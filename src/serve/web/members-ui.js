// The open room's "Members" (protocol v3): each name with its role, and for
// an operator each member's actions (kick, ban, mute, op), a disclosure that
// opens on its first action. rooms-ui.js draws it whenever the room changes.

import { el, button } from './dom.js';

/**
 * Draws `members` ({ username, role, online, muted }) in `list`. `mine`: our
 * role in the room (an owner or operator gets the actions); `me`: our name;
 * `act(username, fields)`: does an action. Drawn again on every change, so
 * an open menu stays open and the focus stays where it was.
 */
export function drawMembers(list, members, { mine, me, act }) {
  const active = list.contains(document.activeElement) ? document.activeElement : null;
  const focused = active ? [active.closest('li').dataset.name, active.getAttribute('aria-label') || active.textContent] : null;
  const openMenu = list.querySelector('.member-menu:not([hidden])');
  const opened = openMenu ? openMenu.closest('li').dataset.name : null;
  list.replaceChildren();
  for (const member of members) {
    const item = el('li', member.online ? 'online-member' : 'offline-member');
    const who = el('span', 'member', member.username);
    if (member.role === 'owner' || member.role === 'operator') who.append(el('span', 'role', ` (${member.role})`));
    if (member.muted) who.append(el('span', 'role', ' (muted)'));
    if (!member.online) who.append(el('span', 'visually-hidden', ' (offline)'));
    item.append(who);
    const mayModerate = (mine === 'owner' || mine === 'operator') && member.username !== me && member.role !== 'owner';
    if (mayModerate) item.append(...memberMenu(member, mine, act));
    item.dataset.name = member.username;
    list.append(item);
    if (member.username === opened && mayModerate) {
      item.querySelector('.member-menu').hidden = false;
      item.querySelector('.member-actions').setAttribute('aria-expanded', 'true');
    }
    if (focused && member.username === focused[0]) {
      const again = [...item.querySelectorAll('button')]
        .find((b) => (b.getAttribute('aria-label') || b.textContent) === focused[1]);
      if (again) again.focus();
    }
  }
}

/** An operator's actions on one member: a button that shows them. */
function memberMenu(member, mine, act) {
  const name = member.username;
  const menuId = `moderate-${Math.random().toString(36).slice(2)}`;
  const toggle = button('', 'quiet member-actions');
  toggle.setAttribute('aria-label', `Moderate ${name}`);
  toggle.setAttribute('aria-expanded', 'false');
  toggle.setAttribute('aria-controls', menuId);
  const menu = el('div', 'member-menu');
  menu.id = menuId;
  menu.setAttribute('role', 'group');
  menu.setAttribute('aria-label', `Moderate ${name}`);
  menu.hidden = true;
  const action = (text, fields) => {
    const node = button(text);
    node.addEventListener('click', () => {
      act(name, fields);
      menu.hidden = true;
      toggle.setAttribute('aria-expanded', 'false');
      toggle.focus();
    });
    menu.append(node);
  };
  action('Kick', { type: 'kick' });
  action('Ban', { type: 'ban' });
  action(member.muted ? 'Unmute' : 'Mute', { type: member.muted ? 'unmute' : 'mute' });
  if (mine === 'owner') {
    action(member.role === 'operator' ? 'Remove operator' : 'Make operator', { type: member.role === 'operator' ? 'deop' : 'op' });
  }
  const cancel = button('Cancel');
  cancel.addEventListener('click', () => {
    menu.hidden = true;
    toggle.setAttribute('aria-expanded', 'false');
    toggle.focus();
  });
  menu.append(cancel);
  toggle.addEventListener('click', () => {
    menu.hidden = !menu.hidden;
    toggle.setAttribute('aria-expanded', String(!menu.hidden));
    if (!menu.hidden) menu.querySelector('button').focus();
  });
  menu.addEventListener('keydown', (event) => {
    if (event.key !== 'Escape') return;
    menu.hidden = true;
    toggle.setAttribute('aria-expanded', 'false');
    toggle.focus();
  });
  return [toggle, menu];
}
