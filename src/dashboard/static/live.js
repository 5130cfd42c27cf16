// Mikabot dashboard: the live desk. One WebSocket per tab speaks the desk
// protocol (docs/desk-protocol.md): the store's live conversations, the one
// conversation open here (its history, then its events), and, for agents and
// owners, taking it over, writing to the shopper and handing it back.
// Every piece of data is drawn with textContent, never as HTML.

const root = document.getElementById('desk');
if (root) start(root);

function start(root) {
  const $ = (id) => document.getElementById(id);
  const el = {
    status: $('desk-status'),
    announce: $('desk-announce'),
    lost: $('desk-lost'),
    lostText: $('desk-lost-text'),
    retry: $('desk-retry'),
    reload: $('desk-reload'),
    listTitle: $('desk-list-title'),
    waiting: $('desk-waiting'),
    connecting: $('desk-connecting'),
    empty: $('desk-empty'),
    table: $('desk-table'),
    list: $('desk-list'),
    pane: $('desk-open'),
    title: $('desk-open-title'),
    close: $('desk-close'),
    meta: $('desk-open-meta'),
    messages: $('desk-messages'),
    typing: $('desk-typing'),
    actions: $('desk-actions'),
    takeOver: $('take-over'),
    handBack: $('hand-back'),
    form: $('agent-form'),
    text: $('agent-text'),
    hint: $('agent-hint'),
    send: $('agent-send'),
  };

  const storeId = root.dataset.store ?? '';
  const baseTitle = document.title;
  const lang = document.documentElement.lang || undefined;
  const WS_OPEN = 1;
  const PING_EVERY_MS = 20_000;
  const SILENCE_MS = 50_000;
  const TYPING_EVERY_MS = 2_000;
  const TYPING_SHOWN_MS = 4_000;
  const BACKOFF_MAX_MS = 30_000;

  /** Who is at this tab; the ready frame has the last word. */
  let me = { name: root.dataset.you ?? '', mayAct: root.dataset.mayAct === 'true' };
  let idleReturnSecs = 0;

  /** The live list: conversation_id → Conversation. */
  const conversations = new Map();
  /** conversation_id → its <tr>. */
  const rows = new Map();
  /** The conversation open in the right pane, or null. */
  let open = null;
  /** Agent messages sent from this tab and not yet confirmed: client_id → entry. */
  const pending = new Map();

  let ws = null;
  let ready = false;
  let attempts = 0;
  let reconnectTimer = null;
  let retryTicker = null;
  let pingTimer = null;
  let pingNonce = 0;
  let lastHeard = 0;
  let lastTypingSent = 0;
  let leaving = false;
  let lastWaiting = 0;

  // ---- formatting -------------------------------------------------------

  const LANGUAGES = { en: 'English', nl: 'Dutch', fr: 'French', de: 'German', es: 'Spanish', it: 'Italian' };
  const STATES = {
    assistant_replying: 'Assistant replying',
    waiting_for_shopper: 'Waiting for the shopper',
    waiting_for_human: 'Wants a person',
    human_active: 'With a person',
  };
  const FINISH = {
    length: 'cut at the length limit',
    content_filter: 'stopped by the content filter',
    taken_over: 'stopped: taken over',
  };

  function formatter(options) {
    try { return new Intl.DateTimeFormat(lang, options); } catch { return new Intl.DateTimeFormat(undefined, options); }
  }
  const timeFormat = formatter({ hour: '2-digit', minute: '2-digit' });
  const dateTimeFormat = formatter({ dateStyle: 'short', timeStyle: 'short' });

  function isNumber(value) { return typeof value === 'number' && Number.isFinite(value); }
  function str(value) { return typeof value === 'string' ? value : ''; }

  function timeOf(ms) {
    if (!isNumber(ms)) return '';
    const at = new Date(ms);
    const today = new Date();
    return at.toDateString() === today.toDateString() ? timeFormat.format(at) : dateTimeFormat.format(at);
  }

  function stateLabel(state) { return STATES[state] ?? str(state); }
  function languageLabel(code) { return LANGUAGES[code] ?? str(code); }
  function deviceLabel(device) {
    const d = str(device);
    return d ? d.charAt(0).toUpperCase() + d.slice(1) : '';
  }

  function priceOf(card) {
    const price = str(card.price);
    const max = str(card.price_max);
    const currency = str(card.currency);
    const one = (amount) => {
      const n = Number(amount);
      if (amount === '' || !Number.isFinite(n)) return amount;
      try {
        return new Intl.NumberFormat(lang, { style: 'currency', currency }).format(n);
      } catch {
        return currency ? `${amount} ${currency}` : amount;
      }
    };
    if (!price) return '';
    return max && max !== price ? `${one(price)}–${one(max)}` : one(price);
  }

  /** The card's link, only when it is an absolute http(s) address. */
  function safeUrl(raw) {
    if (typeof raw !== 'string' || raw === '') return null;
    try {
      const url = new URL(raw);
      return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
    } catch {
      return null;
    }
  }

  function newClientId() {
    if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  }

  function node(tag, className, text) {
    const e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // ---- status line and connection banner --------------------------------

  function setStatus(text, kind = 'info', code = '') {
    el.status.textContent = text;
    el.status.dataset.kind = kind;
    if (code) el.status.dataset.code = code; else delete el.status.dataset.code;
  }

  function announce(text) {
    el.announce.textContent = '';
    // A fresh text node so screen readers read a repeat too.
    setTimeout(() => { el.announce.textContent = text; }, 50);
  }

  function showLost(text, retrying) {
    el.lostText.textContent = text;
    el.lost.hidden = false;
    el.lost.dataset.retrying = String(retrying);
    if (!retrying) el.retry.textContent = '';
  }

  function hideLost() {
    el.lost.hidden = true;
    el.retry.textContent = '';
    clearInterval(retryTicker);
    retryTicker = null;
  }

  el.reload?.addEventListener('click', () => location.reload());

  // ---- the socket -------------------------------------------------------

  function socketUrl() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${scheme}//${location.host}/dashboard/stores/${encodeURIComponent(storeId)}/desk/socket`;
  }

  function connect() {
    clearTimeout(reconnectTimer);
    reconnectTimer = null;
    let socket;
    try {
      socket = new WebSocket(socketUrl());
    } catch {
      onClosed(1006);
      return;
    }
    ws = socket;
    ready = false;
    socket.addEventListener('open', () => {
      if (socket !== ws) return;
      lastHeard = Date.now();
      startPing(socket);
    });
    socket.addEventListener('message', (event) => {
      if (socket !== ws) return;
      lastHeard = Date.now();
      if (typeof event.data !== 'string') return;
      let frame;
      try { frame = JSON.parse(event.data); } catch { return; }
      if (frame && typeof frame === 'object' && typeof frame.type === 'string') handle(frame);
    });
    socket.addEventListener('close', (event) => {
      if (socket !== ws) return;
      onClosed(event.code);
    });
  }

  function send(frame) {
    if (!ws || ws.readyState !== WS_OPEN) return false;
    ws.send(JSON.stringify(frame));
    return true;
  }

  function startPing(socket) {
    clearInterval(pingTimer);
    pingTimer = setInterval(() => {
      if (socket !== ws) { clearInterval(pingTimer); return; }
      if (Date.now() - lastHeard > SILENCE_MS) {
        // No pong nor anything else for too long: the link is dead.
        ws = null;
        try { socket.close(); } catch { /* already closing */ }
        onClosed(1006);
        return;
      }
      pingNonce += 1;
      send({ type: 'ping', nonce: String(pingNonce) });
    }, PING_EVERY_MS);
  }

  function onClosed(code) {
    ws = null;
    ready = false;
    clearInterval(pingTimer);
    pingTimer = null;
    updateControls();
    if (leaving) return;
    if (code === 4403) {
      showLost('Your access to this store ended — reload', false);
      setStatus('Your access to this store ended.', 'error', 'access_revoked');
      return;
    }
    if (code === 4001) {
      // The page fell behind the node: only a reload starts it afresh.
      showLost('Connection lost — reload', false);
      return;
    }
    showLost('Connection lost — reload', true);
    scheduleReconnect();
  }

  function scheduleReconnect() {
    clearTimeout(reconnectTimer);
    clearInterval(retryTicker);
    const base = Math.min(BACKOFF_MAX_MS, 1000 * 2 ** Math.min(attempts, 5));
    const delay = Math.round(base * (0.5 + Math.random() / 2));
    attempts += 1;
    const at = Date.now() + delay;
    const tick = () => {
      const left = Math.max(0, Math.ceil((at - Date.now()) / 1000));
      el.retry.textContent = `Trying again in ${left} s…`;
    };
    tick();
    retryTicker = setInterval(tick, 1000);
    reconnectTimer = setTimeout(() => {
      clearInterval(retryTicker);
      el.retry.textContent = 'Trying again…';
      connect();
    }, delay);
  }

  window.addEventListener('online', () => {
    if (!ws && reconnectTimer) connect();
  });
  window.addEventListener('pagehide', () => { leaving = true; });
  window.addEventListener('pageshow', (event) => {
    if (event.persisted) { leaving = false; if (!ws) connect(); }
  });

  // ---- frames from the node ---------------------------------------------

  function handle(frame) {
    switch (frame.type) {
      case 'ready': onReady(frame); break;
      case 'conversation': if (frame.conversation) upsert(frame.conversation); break;
      case 'conversation_ended': onEnded(frame.conversation_id); break;
      case 'watching': onWatching(frame.conversation); break;
      case 'history': onHistory(frame); break;
      case 'message': onMessage(frame); break;
      case 'tokens': onTokens(frame); break;
      case 'reply_done': onReplyEnd(frame, false); break;
      case 'reply_failed': onReplyEnd(frame, true); break;
      case 'typing': onTyping(frame); break;
      case 'sent': onSent(frame); break;
      case 'done': onDone(frame); break;
      case 'error': onError(frame); break;
      case 'pong': break;
      default: break; // a frame type this page does not know: ignored
    }
  }

  function onReady(frame) {
    ready = true;
    attempts = 0;
    hideLost();
    el.connecting.hidden = true;
    const you = frame.you ?? {};
    me = { name: str(you.name) || me.name, mayAct: you.may_act === true };
    idleReturnSecs = isNumber(frame.idle_return_secs) ? frame.idle_return_secs : 0;
    conversations.clear();
    for (const row of rows.values()) row.remove();
    rows.clear();
    const list = Array.isArray(frame.conversations) ? frame.conversations : [];
    for (const conversation of list) upsert(conversation, true);
    refreshList();
    if (open) {
      if (conversations.has(open.id)) {
        requestWatch(open.id);
      } else {
        markEnded();
      }
    }
    // Messages whose `sent` never came: the same client_id is stored once.
    for (const entry of pending.values()) {
      if (entry.state === 'pending') {
        send({ type: 'message', conversation_id: entry.conversationId, client_id: entry.clientId, text: entry.text });
      }
    }
    updateControls();
  }

  // ---- the list ---------------------------------------------------------

  function upsert(conversation, quiet = false) {
    const id = str(conversation.conversation_id);
    if (!id) return;
    conversations.set(id, conversation);
    let tr = rows.get(id);
    if (!tr) {
      tr = buildRow(id);
      rows.set(id, tr);
      placeRow(tr, conversation);
    }
    fillRow(tr, conversation);
    if (!quiet) refreshList();
    if (open && open.id === id) {
      renderMeta();
      updateControls();
    }
  }

  function buildRow(id) {
    const tr = document.createElement('tr');
    tr.dataset.conversation = id;
    for (const name of ['state', 'language', 'page', 'device', 'started', 'holder']) {
      const td = document.createElement('td');
      td.dataset.cell = name;
      tr.append(td);
    }
    const td = document.createElement('td');
    const button = node('button', 'link desk-open-button');
    button.type = 'button';
    button.dataset.open = id;
    td.append(button);
    tr.append(td);
    return tr;
  }

  function placeRow(tr, conversation) {
    // Newest first.
    const started = isNumber(conversation.started_at_ms) ? conversation.started_at_ms : 0;
    for (const other of el.list.children) {
      const theirs = conversations.get(other.dataset.conversation)?.started_at_ms ?? 0;
      if (theirs < started) { el.list.insertBefore(tr, other); return; }
    }
    el.list.append(tr);
  }

  function fillRow(tr, c) {
    tr.dataset.state = str(c.state);
    tr.dataset.shopperConnected = String(c.shopper_connected === true);
    const cell = (name) => tr.querySelector(`td[data-cell="${name}"]`);
    const state = cell('state');
    state.replaceChildren();
    const label = node('span', `state state-${str(c.state)}`, stateLabel(c.state));
    state.append(label);
    if (c.shopper_connected === false) state.append(node('span', 'desk-left muted', ' · shopper left'));
    cell('language').textContent = languageLabel(c.language);
    cell('page').textContent = str(c.page_path) || '—';
    cell('device').textContent = deviceLabel(c.device);
    cell('started').textContent = timeOf(c.started_at_ms);
    cell('holder').textContent = str(c.holder) || '—';
    const button = tr.querySelector('button[data-open]');
    button.replaceChildren(
      document.createTextNode('Open'),
      node('span', 'visually-hidden', ` the conversation started ${timeOf(c.started_at_ms)}, ${stateLabel(c.state)}`),
    );
  }

  function refreshList() {
    const count = rows.size;
    el.table.hidden = count === 0;
    el.empty.hidden = count !== 0 || !ready;
    for (const [id, tr] of rows) {
      if (open && open.id === id) tr.setAttribute('aria-current', 'true'); else tr.removeAttribute('aria-current');
    }
    let waiting = 0;
    for (const c of conversations.values()) if (c.state === 'waiting_for_human') waiting += 1;
    el.waiting.textContent = String(waiting);
    el.waiting.dataset.count = String(waiting);
    el.waiting.classList.toggle('zero', waiting === 0);
    document.title = waiting > 0 ? `(${waiting}) ${baseTitle}` : baseTitle;
    if (waiting > lastWaiting) {
      announce(waiting === 1 ? 'A shopper is waiting for a person.' : `${waiting} shoppers are waiting for a person.`);
    }
    lastWaiting = waiting;
  }

  function onEnded(id) {
    if (typeof id !== 'string') return;
    const tr = rows.get(id);
    if (tr) {
      const hadFocus = tr.contains(document.activeElement);
      tr.remove();
      rows.delete(id);
      if (hadFocus) el.listTitle.focus();
    }
    conversations.delete(id);
    refreshList();
    if (open && open.id === id) markEnded();
  }

  el.list.addEventListener('click', (event) => {
    const tr = event.target.closest('tr[data-conversation]');
    if (!tr || event.target.closest('a')) return;
    openConversation(tr.dataset.conversation);
  });

  // ---- the open conversation --------------------------------------------

  function newOpen(id) {
    return {
      id,
      loaded: false,
      ended: false,
      /** message id → its <li>, for dedupe. */
      messages: new Map(),
      /** reply_id → { li, text, last } of replies in flight. */
      replies: new Map(),
      /** reply ids with tokens missed: the history is read again when they end. */
      resynced: new Set(),
      typingTimer: null,
    };
  }

  function openConversation(id) {
    if (!id) return;
    if (open && open.id === id && !open.ended) return;
    clearTyping();
    open = newOpen(id);
    el.pane.dataset.conversation = id;
    el.messages.replaceChildren();
    el.close.hidden = false;
    renderMeta();
    el.meta.append(node('span', '', ' · Loading…'));
    refreshList();
    updateControls();
    if (!requestWatch(id)) setStatus('Not connected: the conversation opens once the connection is back.', 'error');
  }

  function requestWatch(id) {
    if (open && open.id === id) open.loaded = false;
    return send({ type: 'watch', conversation_id: id });
  }

  function closeConversation() {
    clearTyping();
    open = null;
    el.pane.dataset.conversation = '';
    el.messages.replaceChildren();
    el.title.textContent = 'Conversation';
    el.meta.textContent = 'Choose a conversation on the list to watch it.';
    el.close.hidden = true;
    refreshList();
    updateControls();
    send({ type: 'watch', conversation_id: null });
  }

  el.close.addEventListener('click', closeConversation);

  function markEnded() {
    if (!open) return;
    open.ended = true;
    clearTyping();
    renderMeta();
    updateControls();
  }

  function renderMeta() {
    if (!open) return;
    const c = conversations.get(open.id);
    el.title.textContent = c ? `Conversation started ${timeOf(c.started_at_ms)}` : 'Conversation';
    el.meta.replaceChildren();
    if (open.ended) {
      el.meta.textContent = 'This conversation has left the live list.';
      return;
    }
    if (!c) return;
    el.meta.append(node('span', `state state-${str(c.state)}`, stateLabel(c.state)));
    const parts = [languageLabel(c.language), str(c.page_path) || '—', deviceLabel(c.device)];
    if (c.holder) parts.push(`held by ${c.holder}${c.holder === me.name ? ' (you)' : ''}`);
    if (c.shopper_connected === false) parts.push('the shopper left');
    el.meta.append(document.createTextNode(` · ${parts.join(' · ')}`));
  }

  function onWatching(conversation) {
    // `null` answers a watch of null: the pane is already cleared.
    if (!conversation || !open || conversation.conversation_id !== open.id) return;
    upsert(conversation);
  }

  function nearBottom() {
    const m = el.messages;
    return m.scrollHeight - m.scrollTop - m.clientHeight < 48;
  }

  function scrollDown(force) {
    if (force) el.messages.scrollTop = el.messages.scrollHeight;
  }

  function onHistory(frame) {
    if (!open || frame.conversation_id !== open.id) return;
    // Everything drawn before is replaced: the dedupe state starts afresh.
    open.messages.clear();
    open.replies.clear();
    el.messages.replaceChildren();
    const messages = Array.isArray(frame.messages) ? frame.messages : [];
    for (const message of messages) appendMessage(message);
    for (const entry of pending.values()) {
      if (entry.conversationId === open.id) el.messages.append(entry.li);
    }
    open.loaded = true;
    renderMeta();
    updateControls();
    scrollDown(true);
  }

  /** An event about the open conversation, after its history. */
  function isOpenEvent(frame) {
    return open !== null && open.loaded && frame.conversation_id === open.id;
  }

  function whoOf(message) {
    switch (message.role) {
      case 'shopper': return 'Shopper';
      case 'assistant': return 'Assistant';
      case 'agent': {
        const name = str(message.name) || 'Agent';
        return name === me.name ? `${name} (you)` : name;
      }
      default: return str(message.role);
    }
  }

  function renderCards(cards) {
    const list = node('ul', 'desk-cards');
    list.setAttribute('aria-label', 'Products shown');
    for (const card of cards) {
      if (!card || typeof card !== 'object') continue;
      const item = node('li', 'desk-card');
      if (card.id !== undefined) item.dataset.card = str(card.id);
      const href = safeUrl(card.url);
      const name = str(card.name) || 'Product';
      if (href) {
        const a = node('a', 'desk-card-name', name);
        a.href = href;
        a.target = '_blank';
        a.rel = 'noopener noreferrer';
        item.append(a);
      } else {
        item.append(node('span', 'desk-card-name', name));
      }
      const price = priceOf(card);
      if (price) item.append(node('span', 'desk-card-price', price));
      list.append(item);
    }
    return list;
  }

  function finishNote(message) {
    const notes = [];
    if (message.finish_reason && FINISH[message.finish_reason]) notes.push(FINISH[message.finish_reason]);
    if (message.incomplete) notes.push('incomplete');
    return notes;
  }

  function messageItem(message) {
    const li = node('li', 'message');
    li.dataset.role = str(message.role);
    if (message.id !== undefined) li.dataset.message = str(message.id);
    if (message.incomplete) li.dataset.incomplete = 'true';
    if (message.finish_reason) li.dataset.finish = str(message.finish_reason);
    const head = [whoOf(message), timeOf(message.at_ms), ...finishNote(message)].filter(Boolean);
    li.append(node('p', 'who muted', head.join(' · ')));
    li.append(node('p', 'text', str(message.text)));
    if (Array.isArray(message.cards) && message.cards.length > 0) li.append(renderCards(message.cards));
    return li;
  }

  function appendMessage(message) {
    if (!message || typeof message !== 'object') return;
    const id = str(message.id);
    if (id && open.messages.has(id)) return;
    const li = messageItem(message);
    if (id) open.messages.set(id, li);
    el.messages.append(li);
  }

  function onMessage(frame) {
    if (!isOpenEvent(frame) || !frame.message) return;
    const stick = nearBottom();
    appendMessage(frame.message);
    if (frame.message.role === 'shopper' && el.typing.dataset.who === 'shopper') clearTyping();
    if (frame.message.role === 'agent' && el.typing.dataset.who === 'agent') clearTyping();
    scrollDown(stick);
  }

  function streamingReply(replyId) {
    let reply = open.replies.get(replyId);
    if (reply) return reply;
    const li = node('li', 'message reply-streaming');
    li.dataset.role = 'assistant';
    li.dataset.reply = replyId;
    li.setAttribute('aria-busy', 'true');
    const who = node('p', 'who muted', 'Assistant · replying…');
    const text = node('p', 'text');
    li.append(who, text);
    el.messages.append(li);
    // Tokens seq 0.. : nothing drawn yet.
    reply = { li, who, text, last: -1, gap: false };
    open.replies.set(replyId, reply);
    return reply;
  }

  function onTokens(frame) {
    if (!isOpenEvent(frame)) return;
    const replyId = str(frame.reply_id);
    const from = frame.from_seq;
    const seq = frame.seq;
    if (!replyId || !Number.isInteger(from) || !Number.isInteger(seq) || seq < from) return;
    // A reply that is already drawn whole (history, or ended here).
    if (open.messages.has(replyId)) return;
    const stick = nearBottom();
    const reply = streamingReply(replyId);
    if (seq <= reply.last) return; // every token of it is drawn already
    if (from <= reply.last) {
      // Partly drawn: never draw a token twice; read the history again at the end.
      reply.gap = true;
      return;
    }
    if (from > reply.last + 1) reply.gap = true; // tokens missed in between
    reply.text.append(document.createTextNode(str(frame.text)));
    reply.last = seq;
    scrollDown(stick);
  }

  function resync(replyId) {
    if (!open || open.resynced.has(replyId)) return;
    open.resynced.add(replyId);
    requestWatch(open.id);
  }

  function onReplyEnd(frame, failed) {
    if (!isOpenEvent(frame)) return;
    const replyId = str(frame.reply_id);
    if (!replyId) return;
    const reply = open.replies.get(replyId);
    if (!reply) {
      // Nothing of it drawn here: its stored text comes with the history.
      if (!open.messages.has(replyId)) resync(replyId);
      return;
    }
    open.replies.delete(replyId);
    const stick = nearBottom();
    const { li } = reply;
    li.classList.remove('reply-streaming');
    li.removeAttribute('aria-busy');
    li.dataset.message = replyId;
    const finish = failed ? '' : str(frame.finish_reason);
    const incomplete = failed || finish === 'taken_over';
    if (finish) li.dataset.finish = finish;
    if (incomplete) li.dataset.incomplete = 'true';
    if (failed) li.classList.add('failed');
    const notes = finishNote({ finish_reason: finish, incomplete });
    if (failed) notes.push('the reply failed');
    reply.who.textContent = ['Assistant', timeOf(Date.now()), ...notes].join(' · ');
    if (!failed && Array.isArray(frame.cards) && frame.cards.length > 0) li.append(renderCards(frame.cards));
    open.messages.set(replyId, li);
    scrollDown(stick);
    if (reply.gap) resync(replyId);
  }

  function clearTyping() {
    if (open?.typingTimer) clearTimeout(open.typingTimer);
    el.typing.hidden = true;
    el.typing.textContent = '';
    delete el.typing.dataset.who;
  }

  function onTyping(frame) {
    if (!isOpenEvent(frame)) return;
    const who = frame.who;
    if (who === 'agent' && str(frame.name) === me.name) return; // this person, maybe in another tab
    el.typing.textContent = who === 'shopper' ? 'The shopper is typing…' : `${str(frame.name) || 'An agent'} is typing…`;
    el.typing.dataset.who = str(who);
    el.typing.hidden = false;
    clearTimeout(open.typingTimer);
    open.typingTimer = setTimeout(clearTyping, TYPING_SHOWN_MS);
  }

  // ---- acting: take over, write, hand back -------------------------------

  function openConversationLine() {
    return open ? conversations.get(open.id) : undefined;
  }

  function heldByMe() {
    const c = openConversationLine();
    return Boolean(c && c.holder && c.holder === me.name);
  }

  function updateControls() {
    if (!el.actions || !el.form) return;
    const c = openConversationLine();
    const visible = Boolean(me.mayAct && open && c && !open.ended);
    el.actions.hidden = !visible;
    el.form.hidden = !visible;
    if (!visible) return;
    const mine = heldByMe();
    const online = ready && ws !== null && ws.readyState === WS_OPEN;
    el.takeOver.hidden = mine;
    el.handBack.hidden = !mine;
    el.takeOver.disabled = !online;
    el.handBack.disabled = !online;
    el.send.disabled = false; // unsent messages wait for the connection
    let hint;
    if (mine) {
      hint = 'You hold this conversation: the shopper reads what you write. Enter sends; Shift+Enter starts a new line.';
      if (idleReturnSecs > 0) {
        const minutes = Math.max(1, Math.round(idleReturnSecs / 60));
        hint += ` If you leave the desk, it returns to the assistant after ${minutes} min.`;
      }
    } else if (c.holder) {
      hint = `${c.holder} holds this conversation.`;
    } else {
      hint = 'Take the conversation over to write to the shopper.';
    }
    el.hint.textContent = hint;
  }

  el.takeOver?.addEventListener('click', () => {
    if (!open) return;
    if (send({ type: 'take_over', conversation_id: open.id })) setStatus('Taking over…');
    else setStatus('Not connected.', 'error');
  });

  el.handBack?.addEventListener('click', () => {
    if (!open) return;
    if (send({ type: 'hand_back', conversation_id: open.id })) setStatus('Handing back…');
    else setStatus('Not connected.', 'error');
  });

  function pendingItem(entry) {
    const li = node('li', 'message pending');
    li.dataset.role = 'agent';
    li.dataset.pending = 'true';
    li.dataset.clientId = entry.clientId;
    entry.who = node('p', 'who muted', `${me.name || 'You'} (you) · sending…`);
    li.append(entry.who, node('p', 'text', entry.text));
    entry.controls = node('p', 'pending-controls');
    entry.controls.hidden = true;
    li.append(entry.controls);
    return li;
  }

  function sendPending(entry) {
    entry.state = 'pending';
    entry.li.dataset.pending = 'true';
    entry.li.classList.remove('failed');
    entry.who.textContent = `${me.name || 'You'} (you) · sending…`;
    entry.controls.hidden = true;
    entry.controls.replaceChildren();
    send({ type: 'message', conversation_id: entry.conversationId, client_id: entry.clientId, text: entry.text });
  }

  function failPending(entry, reason) {
    entry.state = 'failed';
    entry.li.dataset.pending = 'failed';
    entry.li.classList.add('failed');
    entry.who.textContent = `${me.name || 'You'} (you) · not sent: ${reason}`;
    const again = node('button', 'link', 'Send again');
    again.type = 'button';
    again.addEventListener('click', () => sendPending(entry));
    const discard = node('button', 'link', 'Discard');
    discard.type = 'button';
    discard.addEventListener('click', () => {
      pending.delete(entry.clientId);
      entry.li.remove();
      el.text?.focus();
    });
    entry.controls.replaceChildren(again, document.createTextNode(' · '), discard);
    entry.controls.hidden = false;
  }

  el.form?.addEventListener('submit', (event) => {
    event.preventDefault();
    if (!open || open.ended) return;
    const text = el.text.value;
    if (text.trim() === '') {
      setStatus('Write a message first.', 'error', 'message_empty');
      return;
    }
    const entry = { clientId: newClientId(), conversationId: open.id, text, state: 'pending' };
    entry.li = pendingItem(entry);
    pending.set(entry.clientId, entry);
    el.messages.append(entry.li);
    scrollDown(true);
    el.text.value = '';
    if (!send({ type: 'message', conversation_id: entry.conversationId, client_id: entry.clientId, text })) {
      setStatus('Not connected: the message goes out once the connection is back.', 'error');
    }
  });

  el.text?.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      if (typeof el.form.requestSubmit === 'function') el.form.requestSubmit(); else el.send.click();
    }
  });

  el.text?.addEventListener('input', () => {
    if (!open || !heldByMe() || el.text.value === '') return;
    const now = Date.now();
    if (now - lastTypingSent < TYPING_EVERY_MS) return;
    if (send({ type: 'typing', conversation_id: open.id })) lastTypingSent = now;
  });

  function onSent(frame) {
    const entry = pending.get(str(frame.client_id));
    if (!entry) return;
    pending.delete(entry.clientId);
    const id = str(frame.message_id);
    const li = entry.li;
    if (!open || open.id !== entry.conversationId) { li.remove(); return; }
    if (id && open.messages.has(id)) { li.remove(); return; }
    li.classList.remove('pending', 'failed');
    delete li.dataset.pending;
    delete li.dataset.clientId;
    entry.controls.remove();
    if (id) {
      li.dataset.message = id;
      open.messages.set(id, li);
    }
    entry.who.textContent = `${me.name || 'You'} (you) · ${timeOf(Date.now())}`;
  }

  function onDone(frame) {
    const id = str(frame.conversation_id);
    const c = conversations.get(id);
    if (frame.action === 'take_over') {
      if (c) upsert({ ...c, holder: me.name, state: 'human_active' });
      setStatus('You hold this conversation now: the assistant is quiet until you hand it back.', 'info', 'take_over');
      if (open && open.id === id) el.text?.focus();
    } else if (frame.action === 'hand_back') {
      if (c && c.holder === me.name) upsert({ ...c, holder: null });
      setStatus('Handed back: the assistant answers again.', 'info', 'hand_back');
    }
  }

  const ERRORS = {
    invalid_json: 'The node did not understand this page (invalid JSON).',
    invalid_frame: 'The node refused a request from this page.',
    unknown_frame_type: 'The node does not know a request from this page.',
    frame_too_large: 'That was too large to send.',
    rate_limited: 'Too many requests at once: wait a moment.',
    not_live: 'This conversation is no longer live.',
    not_holder: 'Take the conversation over first.',
    role_too_low: 'Your role only lets you watch.',
    message_empty: 'The message is empty.',
    message_too_long: 'The message is too long.',
    storage_failed: 'It was not stored: try again.',
    too_slow: 'This page fell behind the conversations.',
    access_revoked: 'Your access to this store ended.',
    heartbeat_timeout: 'The connection went quiet.',
    server_shutdown: 'The server is restarting.',
  };

  function onError(frame) {
    const code = str(frame.code);
    const serverMessage = str(frame.message);
    let text;
    if (code === 'held_by_other') {
      const holder = str(frame.holder);
      text = holder ? `${holder} holds this conversation.` : 'Someone else holds this conversation.';
      if (open) {
        const c = conversations.get(open.id);
        if (c && holder && c.holder !== holder) upsert({ ...c, holder, state: 'human_active' });
      }
    } else {
      text = ERRORS[code] ?? (serverMessage || 'Something went wrong.');
      if (serverMessage && ERRORS[code] && !['too_slow', 'access_revoked', 'server_shutdown', 'heartbeat_timeout'].includes(code)) {
        text += ` (${serverMessage})`;
      }
    }
    setStatus(text, 'error', code);
    const clientId = str(frame.client_id);
    if (clientId) {
      const entry = pending.get(clientId);
      if (entry) failPending(entry, ERRORS[code] ?? (serverMessage || code));
      return;
    }
    if (code === 'not_live' && open && !open.loaded) markEnded();
  }

  // ---- go ---------------------------------------------------------------

  updateControls();
  connect();
}
