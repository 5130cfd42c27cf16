/*! Mikabot widget: one script tag puts a store's shopping assistant on a page.
 * <script src="https://NODE/widget.js" data-store="STORE_ID" async></script>
 * Renders in a Shadow DOM, sets no cookies, stores nothing until the shopper
 * opens the chat (then only the session id), streams replies token by token
 * and resumes them after a dropped socket or a page navigation. Model text is
 * only ever rendered as text nodes (a small Markdown subset, links to the
 * store's own site only). Protocol: docs/protocol.md. */
(function () {
  'use strict';
  var script = document.currentScript;
  if (!script || window.__mikabotWidget) return;
  window.__mikabotWidget = true;

  var store = script.getAttribute('data-store') || '';
  var base = new URL(script.src, location.href);
  var wsUrl = (base.protocol === 'https:' ? 'wss://' : 'ws://') + base.host +
    '/v1/widget/ws?store=' + encodeURIComponent(store);
  var SESSION_KEY = 'mikabot.' + store + '.session';
  var OPEN_KEY = 'mikabot.' + store + '.open';

  var STRINGS = {
    en: { open: 'Open chat', close: 'Close chat', greeting: 'Hi! What are you looking for today?', placeholder: 'Ask about our products…', send: 'Send', typing: 'The assistant is typing', offline: 'You are offline. Reconnecting…', reconnecting: 'Connection lost. Reconnecting…', rate: 'Too many messages. Sending again in {s} s.', unavailable: 'Sorry, the assistant could not answer just now.', interrupted: 'Sorry, this answer was interrupted.', retry: 'Try again', replaced: 'This chat continued in another window.', here: 'Continue here', blocked: 'The assistant is not available on this site.', sending: 'Sending…', failed: 'Not sent', you: 'You', bot: 'Assistant', log: 'Conversation', from: 'from {p}', message: 'Message', menu: 'Conversation options', download: 'Download conversation', erase: 'Delete conversation', eraseConfirm: 'Delete this conversation for good?', eraseYes: 'Delete', cancel: 'Cancel', erased: 'This conversation was deleted.', actionFailed: 'That did not work. Please try again.', human: 'Talk to a person', staff: 'Store team', joined: '{n} from the store joined the chat', answering: 'You are chatting with {n} from the store', agentTyping: '{n} is typing…', back: 'The assistant is back', backIdle: '{n} left; the assistant is back', asked: 'We have asked someone from the store to join', cut: 'Interrupted' },
    nl: { open: 'Chat openen', close: 'Chat sluiten', greeting: 'Hoi! Waar ben je vandaag naar op zoek?', placeholder: 'Vraag iets over onze producten…', send: 'Versturen', typing: 'De assistent typt', offline: 'Je bent offline. Opnieuw verbinden…', reconnecting: 'Opnieuw verbinden…', rate: 'Te veel berichten. Opnieuw versturen over {s} s.', unavailable: 'Sorry, de assistent kon nu niet antwoorden.', interrupted: 'Sorry, dit antwoord werd onderbroken.', retry: 'Opnieuw proberen', replaced: 'Deze chat gaat verder in een ander venster.', here: 'Hier verdergaan', blocked: 'De assistent is niet beschikbaar op deze site.', sending: 'Versturen…', failed: 'Niet verstuurd', you: 'Jij', bot: 'Assistent', log: 'Gesprek', from: 'vanaf {p}', message: 'Bericht', menu: 'Gespreksopties', download: 'Gesprek downloaden', erase: 'Gesprek verwijderen', eraseConfirm: 'Dit gesprek definitief verwijderen?', eraseYes: 'Verwijderen', cancel: 'Annuleren', erased: 'Dit gesprek is verwijderd.', actionFailed: 'Dat lukte niet. Probeer het opnieuw.', human: 'Met een medewerker praten', staff: 'Winkelteam', joined: '{n} van de winkel is bij het gesprek gekomen', answering: 'Je chat met {n} van de winkel', agentTyping: '{n} typt…', back: 'De assistent is terug', backIdle: '{n} is weg; de assistent is terug', asked: 'We hebben iemand van de winkel gevraagd erbij te komen', cut: 'Onderbroken' },
    fr: { open: 'Ouvrir le chat', close: 'Fermer le chat', greeting: 'Bonjour ! Que cherchez-vous aujourd’hui ?', placeholder: 'Posez une question sur nos produits…', send: 'Envoyer', typing: 'L’assistant écrit', offline: 'Vous êtes hors ligne. Reconnexion…', reconnecting: 'Reconnexion…', rate: 'Trop de messages. Nouvel envoi dans {s} s.', unavailable: 'Désolé, l’assistant n’a pas pu répondre pour le moment.', interrupted: 'Désolé, cette réponse a été interrompue.', retry: 'Réessayer', replaced: 'Ce chat continue dans une autre fenêtre.', here: 'Continuer ici', blocked: 'L’assistant n’est pas disponible sur ce site.', sending: 'Envoi…', failed: 'Non envoyé', you: 'Vous', bot: 'Assistant', log: 'Conversation', from: 'à partir de {p}', message: 'Message', menu: 'Options de la conversation', download: 'Télécharger la conversation', erase: 'Supprimer la conversation', eraseConfirm: 'Supprimer définitivement cette conversation ?', eraseYes: 'Supprimer', cancel: 'Annuler', erased: 'Cette conversation a été supprimée.', actionFailed: 'Cela n’a pas fonctionné. Réessayez.', human: 'Parler à une personne', staff: 'Équipe du magasin', joined: '{n} du magasin a rejoint la conversation', answering: 'Vous discutez avec {n} du magasin', agentTyping: '{n} écrit…', back: 'L’assistant est de retour', backIdle: '{n} a quitté la conversation ; l’assistant est de retour', asked: 'Nous avons demandé à quelqu’un du magasin de vous rejoindre', cut: 'Interrompue' },
    de: { open: 'Chat öffnen', close: 'Chat schließen', greeting: 'Hallo! Wonach suchen Sie heute?', placeholder: 'Fragen Sie nach unseren Produkten…', send: 'Senden', typing: 'Der Assistent schreibt', offline: 'Sie sind offline. Verbindung wird hergestellt…', reconnecting: 'Verbindung wird hergestellt…', rate: 'Zu viele Nachrichten. Erneuter Versand in {s} s.', unavailable: 'Entschuldigung, der Assistent konnte gerade nicht antworten.', interrupted: 'Entschuldigung, diese Antwort wurde unterbrochen.', retry: 'Erneut versuchen', replaced: 'Dieser Chat geht in einem anderen Fenster weiter.', here: 'Hier fortsetzen', blocked: 'Der Assistent ist auf dieser Website nicht verfügbar.', sending: 'Wird gesendet…', failed: 'Nicht gesendet', you: 'Sie', bot: 'Assistent', log: 'Unterhaltung', from: 'ab {p}', message: 'Nachricht', menu: 'Optionen der Unterhaltung', download: 'Unterhaltung herunterladen', erase: 'Unterhaltung löschen', eraseConfirm: 'Diese Unterhaltung endgültig löschen?', eraseYes: 'Löschen', cancel: 'Abbrechen', erased: 'Diese Unterhaltung wurde gelöscht.', actionFailed: 'Das hat nicht geklappt. Bitte erneut versuchen.', human: 'Mit einer Person sprechen', staff: 'Shop-Team', joined: '{n} vom Shop ist dem Chat beigetreten', answering: 'Sie chatten mit {n} vom Shop', agentTyping: '{n} schreibt…', back: 'Der Assistent ist zurück', backIdle: '{n} ist gegangen; der Assistent ist zurück', asked: 'Wir haben jemanden vom Shop gebeten, dazuzukommen', cut: 'Unterbrochen' },
    es: { open: 'Abrir chat', close: 'Cerrar chat', greeting: '¡Hola! ¿Qué buscas hoy?', placeholder: 'Pregunta por nuestros productos…', send: 'Enviar', typing: 'El asistente está escribiendo', offline: 'Sin conexión. Reconectando…', reconnecting: 'Reconectando…', rate: 'Demasiados mensajes. Reenvío en {s} s.', unavailable: 'Lo sentimos, el asistente no pudo responder ahora.', interrupted: 'Lo sentimos, esta respuesta se interrumpió.', retry: 'Reintentar', replaced: 'Este chat continúa en otra ventana.', here: 'Continuar aquí', blocked: 'El asistente no está disponible en este sitio.', sending: 'Enviando…', failed: 'No enviado', you: 'Tú', bot: 'Asistente', log: 'Conversación', from: 'desde {p}', message: 'Mensaje', menu: 'Opciones de la conversación', download: 'Descargar la conversación', erase: 'Eliminar la conversación', eraseConfirm: '¿Eliminar esta conversación para siempre?', eraseYes: 'Eliminar', cancel: 'Cancelar', erased: 'Esta conversación se ha eliminado.', actionFailed: 'No ha funcionado. Inténtalo de nuevo.', human: 'Hablar con una persona', staff: 'Equipo de la tienda', joined: '{n}, de la tienda, se ha unido al chat', answering: 'Estás hablando con {n}, de la tienda', agentTyping: '{n} está escribiendo…', back: 'El asistente ha vuelto', backIdle: '{n} se ha ido; el asistente ha vuelto', asked: 'Hemos pedido a alguien de la tienda que se una', cut: 'Interrumpida' },
    it: { open: 'Apri la chat', close: 'Chiudi la chat', greeting: 'Ciao! Cosa stai cercando oggi?', placeholder: 'Chiedi dei nostri prodotti…', send: 'Invia', typing: 'L’assistente sta scrivendo', offline: 'Sei offline. Riconnessione…', reconnecting: 'Riconnessione…', rate: 'Troppi messaggi. Nuovo invio tra {s} s.', unavailable: 'Spiacenti, l’assistente non ha potuto rispondere ora.', interrupted: 'Spiacenti, questa risposta è stata interrotta.', retry: 'Riprova', replaced: 'Questa chat continua in un’altra finestra.', here: 'Continua qui', blocked: 'L’assistente non è disponibile su questo sito.', sending: 'Invio…', failed: 'Non inviato', you: 'Tu', bot: 'Assistente', log: 'Conversazione', from: 'da {p}', message: 'Messaggio', menu: 'Opzioni della conversazione', download: 'Scarica la conversazione', erase: 'Elimina la conversazione', eraseConfirm: 'Eliminare definitivamente questa conversazione?', eraseYes: 'Elimina', cancel: 'Annulla', erased: 'Questa conversazione è stata eliminata.', actionFailed: 'Non ha funzionato. Riprova.', human: 'Parla con una persona', staff: 'Staff del negozio', joined: '{n} del negozio partecipa ora alla chat', answering: 'Stai chattando con {n} del negozio', agentTyping: '{n} sta scrivendo…', back: 'L’assistente è tornato', backIdle: '{n} ha lasciato la chat; l’assistente è tornato', asked: 'Abbiamo chiesto a qualcuno del negozio di unirsi', cut: 'Interrotta' }
  };

  var locale = navigator.language || 'en';
  var t = STRINGS.en;
  var cfg = { title: 'Shop assistant', color: '#1f5fbf', greeting: '', avatar_url: '', position: 'right', url: '' };

  // Storage that may be blocked by the browser: failures mean "nothing kept".
  function load(area, key) { try { return window[area].getItem(key); } catch (e) { return null; } }
  function keep(area, key, value) {
    try { if (value === null) window[area].removeItem(key); else window[area].setItem(key, value); } catch (e) { /* not kept */ }
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function webUrl(raw) {
    if (!raw) return null;
    try {
      var url = new URL(raw, location.href);
      return url.protocol === 'https:' || url.protocol === 'http:' ? url : null;
    } catch (e) { return null; }
  }

  // The page the shopper came from, as its origin only: a referrer's path
  // and query can carry personal data.
  function referrerOrigin() {
    var url = webUrl(document.referrer);
    return url ? url.origin : undefined;
  }

  // Links in model text may only lead to the store's own site.
  function ownSite(url) {
    var store = webUrl(cfg.url);
    return url.host === location.host || (store && url.host === store.host);
  }

  function link(raw, text) {
    var url = webUrl(raw);
    if (!url || !ownSite(url)) return null;
    var a = el('a', '', text);
    a.href = url.href;
    if (url.origin !== location.origin) {
      a.target = '_blank';
      a.rel = 'noopener noreferrer';
    }
    return a;
  }

  // Inline Markdown: **bold**, *italics*, [text](own-site link). An image
  // becomes its alt text: model text never makes the browser fetch anything.
  var INLINE = /(!?)\[([^\]\n]{1,300})\]\(([^)\s]{1,1000})\)|\*\*([^*\n]+)\*\*|(?<![\w])__([^_\n]+)__(?![\w])|\*([^*\n]+)\*|(?<![\w])_([^_\n]+)_(?![\w])/g;
  function inline(parent, text) {
    var last = 0;
    var re = new RegExp(INLINE.source, 'g');
    var m;
    while ((m = re.exec(text))) {
      parent.append(text.slice(last, m.index));
      if (m[2] !== undefined) {
        var a = m[1] ? null : link(m[3], m[2]);
        parent.append(a || m[2]);
      } else {
        var node = el(m[4] || m[5] ? 'strong' : 'em');
        inline(node, m[4] || m[5] || m[6] || m[7]);
        parent.append(node);
      }
      last = re.lastIndex;
    }
    parent.append(text.slice(last));
  }

  // Block Markdown: paragraphs, line breaks, bulleted and numbered lists.
  function markdown(text) {
    var out = document.createDocumentFragment();
    var list = null;
    var para = null;
    text.split('\n').forEach(function (line) {
      var item = /^\s*(?:[-*•]|(\d{1,3})[.)])\s+(.*)$/.exec(line);
      if (item) {
        var tag = item[1] ? 'ol' : 'ul';
        if (!list || list.tagName.toLowerCase() !== tag) out.append(list = el(tag));
        var li = el('li');
        inline(li, item[2]);
        list.append(li);
        para = null;
      } else if (!line.trim()) {
        list = para = null;
      } else {
        list = null;
        if (para) para.append(el('br')); else out.append(para = el('p'));
        inline(para, line);
      }
    });
    return out;
  }

  function money(amount, currency) {
    try {
      return new Intl.NumberFormat(locale, { style: 'currency', currency: currency }).format(Number(amount));
    } catch (e) { return amount + ' ' + currency; }
  }

  // Text on the accent colour: white or near-black, whichever reads better.
  function onColor(hex) {
    var c = /^#([0-9a-f]{6})$/i.exec(hex) ? parseInt(hex.slice(1), 16) : 0x1f5fbf;
    var lum = [c >> 16, (c >> 8) & 255, c & 255].map(function (v) {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    var l = 0.2126 * lum[0] + 0.7152 * lum[1] + 0.0722 * lum[2];
    return (1.05 / (l + 0.05)) >= 4.5 ? '#ffffff' : '#111111';
  }

  var CSS = ':host{all:initial!important;display:block!important;position:static!important}' +
    '*{box-sizing:border-box}' +
    '.root{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d1d1f;-webkit-font-smoothing:antialiased}' +
    '.launcher{position:fixed;bottom:20px;right:20px;z-index:2147483000;width:60px;height:60px;border-radius:50%;border:0;background:var(--accent);color:var(--on);cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25);display:grid;place-items:center;padding:0}' +
    '.left .launcher,.left .panel{right:auto;left:20px}' +
    '.launcher svg{width:28px;height:28px;fill:currentColor}' +
    'button:focus-visible,a:focus-visible,textarea:focus-visible,.log:focus-visible{outline:3px solid #1d1d1f;outline-offset:2px;box-shadow:0 0 0 2px #fff}' +
    '.panel{position:fixed;bottom:92px;right:20px;z-index:2147483000;width:380px;height:600px;max-height:calc(100vh - 112px);background:#fff;border-radius:14px;box-shadow:0 8px 32px rgba(0,0,0,.28);display:flex;flex-direction:column;overflow:hidden;animation:in .18s ease-out}' +
    '.panel[hidden]{display:none}' +
    '@keyframes in{from{opacity:0;transform:translateY(12px)}}' +
    'header{display:flex;align-items:center;gap:10px;padding:12px 14px;background:var(--accent);color:var(--on)}' +
    'header img{width:32px;height:32px;border-radius:50%;object-fit:cover}' +
    'h2{font-size:16px;margin:0;flex:1;font-weight:600}' +
    '.title{flex:1;min-width:0}.who{display:block;font-size:12px}.who:empty{display:none}' +
    '.x,.more{background:transparent;border:0;color:inherit;font-size:26px;line-height:1;cursor:pointer;padding:2px 8px;border-radius:6px}' +
    '.more{font-size:20px;letter-spacing:1px}' +
    '.tools{display:flex;gap:8px;flex-wrap:wrap;padding:8px 14px;border-bottom:1px solid #e3e3e8;background:#f6f6f8}' +
    '.tools[hidden]{display:none}' +
    '.status{padding:8px 14px;background:#fff4d6;color:#4a3800;font-size:14px;display:flex;gap:8px;align-items:center;flex-wrap:wrap}' +
    '.status:empty{display:none}' +
    '.log{flex:1;overflow-y:auto;margin:0;padding:14px;list-style:none;display:flex;flex-direction:column;gap:10px}' +
    '.msg{max-width:86%;display:flex;flex-direction:column;gap:6px}' +
    '.msg.shopper{align-self:flex-end;align-items:flex-end}' +
    '.bubble{padding:9px 12px;border-radius:14px;background:#f0f1f4;overflow-wrap:anywhere}' +
    '.shopper .bubble{background:var(--accent);color:var(--on)}' +
    '.agent .bubble{background:#e6f2ea;border:1px solid #9cc7ab;white-space:pre-wrap}' +
    '.from{display:flex;gap:6px;align-items:center;font-size:12px;color:#595959}.agent-name{font-weight:600;color:#1d1d1f}' +
    '.badge{font-size:11px;font-weight:600;background:#1e6b3a;color:#fff;border-radius:4px;padding:0 5px}' +
    '.msg.system{align-self:center;max-width:100%;font-size:13px;color:#595959;text-align:center}' +
    '.agent-typing{padding:0 14px 6px;font-size:13px;color:#595959;font-style:italic}.agent-typing:empty{display:none}' +
    '.bubble p{margin:0 0 6px}.bubble p:last-child{margin:0}.bubble ul,.bubble ol{margin:4px 0;padding-left:20px}' +
    '.bubble a{color:#0b4fa8;text-decoration:underline}' +
    '.meta{font-size:12px;color:#595959}' +
    '.note{font-size:14px;color:#8a1f11;display:flex;gap:8px;align-items:center;flex-wrap:wrap}' +
    '.btn{font:inherit;font-size:14px;border:1px solid #6b6b6b;background:#fff;color:#1d1d1f;border-radius:8px;padding:4px 10px;cursor:pointer}' +
    '.btn:disabled{opacity:.6;cursor:default}' +
    '.typing{display:flex;gap:4px;padding:12px}' +
    '.typing i{width:7px;height:7px;border-radius:50%;background:#767676;animation:dot 1s infinite alternate}' +
    '.typing i:nth-child(2){animation-delay:.2s}.typing i:nth-child(3){animation-delay:.4s}' +
    '@keyframes dot{to{opacity:.25;transform:translateY(-3px)}}' +
    '.cards{list-style:none;margin:0;padding:0;display:grid;grid-template-columns:repeat(auto-fill,minmax(140px,1fr));gap:8px;width:100%}' +
    '.cards a{display:flex;flex-direction:column;border:1px solid #d8d8dc;border-radius:10px;overflow:hidden;color:#1d1d1f;text-decoration:none;background:#fff;height:100%}' +
    '.cards img{width:100%;aspect-ratio:4/3;object-fit:cover;background:#f0f1f4}' +
    '.cards span{padding:4px 8px;font-size:13px}.cards .price{font-weight:600;padding-bottom:8px}' +
    'form{display:flex;gap:8px;padding:10px;border-top:1px solid #e3e3e6}' +
    'textarea{flex:1;font:inherit;resize:none;border:1px solid #8a8a8e;border-radius:10px;padding:8px 10px;max-height:120px;color:#1d1d1f;background:#fff}' +
    '.send{border:0;border-radius:10px;background:var(--accent);color:var(--on);padding:0 14px;cursor:pointer;font:inherit;font-weight:600}' +
    '.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}' +
    '@media (max-width:520px){.panel{inset:0;width:100%;height:100%;max-height:none;border-radius:0}.open .launcher{display:none}}' +
    '@media (prefers-reduced-motion:reduce){*{animation:none!important;transition:none!important}}';

  var ui = {};
  var ws = null;
  var ready = false;
  var sessionId = load('localStorage', SESSION_KEY);
  var attempts = 0;
  var retryTimer = 0;
  var offlineTimer = 0;
  var pingTimer = 0;
  var lastHeard = 0;
  var stopped = false; // no reconnect until the shopper asks (origin refused, taken over)
  var outbox = []; // shopper messages not yet acknowledged, in order
  var replies = {}; // reply id -> {li, bubble, text, seq, done}
  var streaming = null; // the reply being streamed
  var typing = null; // the placeholder shown until a reply's first token
  var historyEntries = [];
  var drawQueued = {};
  var rateTimer = 0;
  // A person from the store: who holds the conversation now (null: the
  // assistant), whether one was asked for, and the system lines drawn, each
  // after the message it followed, so a redraw from history keeps them.
  var agent = null;
  var asked = false;
  var wantHuman = false;
  var conversation = null;
  var notes = []; // {li, after: message id or null}
  var lastId = null; // the newest message drawn
  var shown = {}; // agent message ids drawn
  var takenOver = {}; // reply ids a person took over mid-reply
  var agentTimer = 0;
  var lastTyping = 0;

  function build() {
    var host = document.createElement('mikabot-widget');
    var root = host.attachShadow({ mode: 'open' });
    var style = el('style');
    style.textContent = CSS;
    var wrap = el('div', 'root' + (cfg.position === 'left' ? ' left' : ''));
    wrap.style.setProperty('--accent', cfg.color);
    wrap.style.setProperty('--on', onColor(cfg.color));
    var launcher = el('button', 'launcher');
    launcher.type = 'button';
    launcher.setAttribute('aria-label', t.open + ': ' + cfg.title);
    launcher.setAttribute('aria-expanded', 'false');
    launcher.setAttribute('aria-controls', 'mikabot-panel');
    launcher.innerHTML = '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z"/></svg>';
    var panel = el('section', 'panel');
    panel.id = 'mikabot-panel';
    panel.hidden = true;
    panel.setAttribute('role', 'dialog');
    panel.setAttribute('aria-label', cfg.title);
    var header = el('header');
    var avatar = webUrl(cfg.avatar_url);
    if (avatar) {
      var img = el('img');
      img.src = avatar.href;
      img.alt = '';
      header.append(img);
    }
    var title = el('div', 'title');
    var who = el('span', 'who');
    title.append(el('h2', '', cfg.title), who);
    header.append(title);
    var more = el('button', 'more', '⋯');
    more.type = 'button';
    more.setAttribute('aria-label', t.menu);
    more.setAttribute('aria-expanded', 'false');
    more.setAttribute('aria-controls', 'mikabot-tools');
    header.append(more);
    var close = el('button', 'x', '×');
    close.type = 'button';
    close.setAttribute('aria-label', t.close);
    header.append(close);
    var tools = el('div', 'tools');
    tools.id = 'mikabot-tools';
    tools.hidden = true;
    var human = button(t.human, requestHuman);
    human.classList.add('human');
    tools.append(human, button(t.download, download), button(t.erase, confirmErase));
    var status = el('div', 'status');
    status.setAttribute('role', 'status');
    var log = el('ol', 'log');
    log.setAttribute('aria-label', t.log);
    log.tabIndex = 0;
    var agentTyping = el('div', 'agent-typing');
    agentTyping.setAttribute('role', 'status');
    var form = el('form');
    var label = el('label', 'sr', t.message);
    label.htmlFor = 'mikabot-input';
    var input = el('textarea');
    input.id = 'mikabot-input';
    input.rows = 1;
    input.maxLength = 2000;
    input.placeholder = t.placeholder;
    var send = el('button', 'send', t.send);
    send.type = 'submit';
    form.append(label, input, send);
    var announce = el('div', 'sr');
    announce.setAttribute('aria-live', 'polite');
    panel.dataset.mode = 'assistant';
    panel.append(header, tools, status, log, agentTyping, form, announce);
    wrap.append(launcher, panel);
    root.append(style, wrap);
    document.body.append(host);

    launcher.addEventListener('click', function () { if (panel.hidden) open(true); else shut(); });
    close.addEventListener('click', shut);
    more.addEventListener('click', function () {
      tools.hidden = !tools.hidden;
      more.setAttribute('aria-expanded', String(!tools.hidden));
    });
    panel.addEventListener('keydown', function (e) { if (e.key === 'Escape') { e.preventDefault(); shut(); } });
    input.addEventListener('keydown', function (e) {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); submit(); }
    });
    // A person from the store watching sees that the shopper types (at most
    // every 2 s; the node throttles too).
    input.addEventListener('input', function () {
      if (!ws || !ready || !input.value.trim() || Date.now() - lastTyping < 2000) return;
      lastTyping = Date.now();
      sendFrame({ type: 'typing' });
    });
    form.addEventListener('submit', function (e) { e.preventDefault(); submit(); });
    ui = { host: host, wrap: wrap, launcher: launcher, panel: panel, tools: tools, more: more, status: status, log: log, input: input, announce: announce, who: who, human: human, agentTyping: agentTyping };
  }

  function open(focus) {
    ui.panel.hidden = false;
    ui.wrap.classList.add('open');
    ui.launcher.setAttribute('aria-expanded', 'true');
    keep('sessionStorage', OPEN_KEY, '1');
    if (!ui.log.firstChild) greet();
    connect();
    if (focus) ui.input.focus();
  }

  function shut() {
    ui.panel.hidden = true;
    ui.wrap.classList.remove('open');
    ui.launcher.setAttribute('aria-expanded', 'false');
    keep('sessionStorage', OPEN_KEY, null);
    ui.launcher.focus();
  }

  function greet() {
    var li = el('li', 'msg assistant');
    li.dataset.state = 'greeting';
    var bubble = el('div', 'bubble');
    bubble.append(markdown(cfg.greeting || t.greeting));
    li.append(bubble);
    ui.log.append(li);
  }

  function scrollDown() { ui.log.scrollTop = ui.log.scrollHeight; }

  function status(text) {
    ui.status.textContent = text || '';
    for (var i = 1; i < arguments.length; i++) ui.status.append(arguments[i]);
  }

  // ---- the shopper's own rights: download and delete ----

  function shopperApi(action) {
    return fetch(base.origin + '/v1/stores/' + encodeURIComponent(store) + '/shopper/' + action, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ session_id: sessionId }),
      credentials: 'omit'
    });
  }

  function hideTools() {
    ui.tools.hidden = true;
    ui.more.setAttribute('aria-expanded', 'false');
  }

  function download() {
    hideTools();
    if (!sessionId) return status(t.actionFailed);
    shopperApi('export').then(function (r) {
      if (!r.ok) throw new Error(String(r.status));
      return r.blob();
    }).then(function (blob) {
      var a = document.createElement('a');
      a.href = URL.createObjectURL(blob);
      a.download = 'conversation.json';
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(function () { URL.revokeObjectURL(a.href); }, 10000);
    }).catch(function () { status(t.actionFailed); });
  }

  function confirmErase() {
    hideTools();
    if (!sessionId) return forget(true);
    status(t.eraseConfirm, button(t.eraseYes, erase), button(t.cancel, function () { status(''); }));
  }

  function erase() {
    status('');
    shopperApi('erase').then(function (r) {
      if (r.status !== 202 && r.status !== 404) throw new Error(String(r.status));
      forget(true);
    }).catch(function () { status(t.actionFailed); });
  }

  // The conversation is gone (deleted here, or erased by the store): the
  // browser forgets it and the next message starts afresh.
  function forget(announce) {
    sessionId = null;
    keep('localStorage', SESSION_KEY, null);
    outbox = [];
    replies = {};
    streaming = null;
    typing = null;
    conversation = lastId = null;
    notes = [];
    shown = {};
    takenOver = {};
    asked = wantHuman = false;
    setAgent(null);
    ui.log.textContent = '';
    greet();
    if (ws) { var old = ws; ws = null; old.onclose = null; old.close(); ready = false; clearInterval(pingTimer); }
    clearTimeout(retryTimer);
    // The next message opens a new conversation.
    if (announce) status(t.erased);
  }

  function button(text, onClick) {
    var b = el('button', 'btn', text);
    b.type = 'button';
    b.addEventListener('click', onClick);
    return b;
  }

  // ---- the socket ----

  function connect() {
    if (ws || stopped) return;
    clearTimeout(retryTimer);
    var sock;
    try { sock = new WebSocket(wsUrl); } catch (e) { return schedule(); }
    ws = sock;
    sock.onopen = function () {
      lastHeard = Date.now();
      var hello = { type: 'hello', v: 1, language: locale, page_url: location.origin + location.pathname, referrer: referrerOrigin() };
      if (sessionId) hello.session_id = sessionId;
      if (streaming && !streaming.done) {
        hello.resume = { reply_id: streaming.id };
        if (streaming.seq >= 0) hello.resume.last_seq = streaming.seq;
      }
      sock.send(JSON.stringify(hello));
    };
    sock.onmessage = function (e) {
      lastHeard = Date.now();
      var frame;
      try { frame = JSON.parse(e.data); } catch (err) { return; }
      if (ws === sock) onFrame(frame);
    };
    sock.onclose = function (e) { if (ws === sock) closed(e.code); };
  }

  function closed(code) {
    ws = null;
    ready = false;
    clearInterval(pingTimer);
    if (code === 4403 || code === 4404 || code === 4400) {
      stopped = true;
      return status(t.blocked);
    }
    if (code === 4410) {
      forget(true);
      return;
    }
    if (code === 4409) {
      stopped = true;
      return status(t.replaced, button(t.here, function () { stopped = false; status(''); connect(); }));
    }
    schedule();
  }

  // Exponential backoff with jitter; the offline notice shows only when a
  // reconnect does not follow at once.
  function schedule(after) {
    var delay = after || Math.min(30000, 500 * Math.pow(2, attempts)) * (0.5 + Math.random() / 2);
    attempts++;
    clearTimeout(retryTimer);
    retryTimer = setTimeout(connect, delay);
    if (!offlineTimer) {
      offlineTimer = setTimeout(function () {
        if (!ready) status(navigator.onLine === false ? t.offline : t.reconnecting);
      }, 1500);
    }
  }

  window.addEventListener('online', function () {
    if (!ws && !stopped && sessionStarted()) { attempts = 0; connect(); }
  });

  function sessionStarted() { return retryTimer || ready || outbox.length; }

  function sendFrame(frame) {
    if (ws && ready) ws.send(JSON.stringify(frame));
  }

  // A socket can die without a close (a sleeping laptop, a lost network):
  // ask for a pong now and then, and reconnect when nothing comes back.
  function heartbeat() {
    clearInterval(pingTimer);
    pingTimer = setInterval(function () {
      if (Date.now() - lastHeard > 45000 && ws) {
        var dead = ws;
        ws = null;
        dead.onclose = null;
        dead.close();
        closed(1006);
      } else sendFrame({ type: 'ping' });
    }, 20000);
  }

  function onFrame(f) {
    switch (f.type) {
      case 'ready': return onReady(f);
      case 'ack': return onAck(f);
      case 'token': return onToken(f);
      case 'products': return onProducts(f);
      case 'done': return onDone(f);
      case 'error': return onError(f);
      case 'agent_joined': return onAgentJoined(f);
      case 'agent_message': return onAgentMessage(f);
      case 'agent_typing': return onAgentTyping(f);
      case 'handed_back': return onHandedBack(f);
      case 'human_requested': return onHumanRequested();
    }
  }

  function onReady(f) {
    ready = true;
    attempts = 0;
    clearTimeout(offlineTimer);
    offlineTimer = 0;
    if (!rateTimer) status('');
    sessionId = f.session_id;
    keep('localStorage', SESSION_KEY, sessionId);
    heartbeat();
    // The history is the truth: draw it anew, then what is still on its way.
    var live = streaming && f.pending_reply === streaming.id ? streaming : null;
    ui.log.textContent = '';
    replies = {};
    typing = null;
    shown = {};
    historyEntries = f.history || [];
    if (f.conversation_id !== conversation) {
      notes = [];
      takenOver = {};
      asked = false;
      agent = null;
    }
    conversation = f.conversation_id;
    var newest = historyEntries.length ? historyEntries[historyEntries.length - 1].message_id : lastId;
    // A person joined or left while this page was not listening.
    if (f.agent && f.agent !== agent) {
      // The line goes before their first message since the assistant last spoke.
      var before = newest, seen = false;
      historyEntries.forEach(function (entry, i) {
        if (entry.role === 'assistant') { seen = false; before = newest; }
        else if (entry.role === 'agent' && !seen) { seen = true; before = i ? historyEntries[i - 1].message_id : null; }
      });
      note('agent_joined', fill(t.joined, f.agent), before);
    } else if (!f.agent && agent) note('handed_back', t.back, newest);
    setAgent(f.agent);
    if (!historyEntries.length) greet();
    place(null);
    historyEntries.forEach(function (entry, i) {
      drawEntry(entry, i === historyEntries.length - 1);
      place(entry.message_id);
    });
    notes.forEach(function (n) { if (!n.li.parentNode) ui.log.append(n.li); });
    lastId = newest;
    if (f.pending_reply) {
      streaming = live || { id: f.pending_reply, text: '', seq: -1, done: false };
      replies[streaming.id] = streaming;
      if (!streaming.li) makeBubble(streaming);
      ui.log.append(streaming.li);
      if (!streaming.text) showTyping(streaming);
    } else streaming = null;
    outbox.forEach(function (m) { ui.log.append(m.li); });
    flushOutbox();
    if (!f.pending_reply && !agent && historyEntries.length && historyEntries[historyEntries.length - 1].role === 'shopper') showTyping();
    if (wantHuman && !agent && !asked) {
      ui.human.disabled = true;
      sendFrame({ type: 'request_human' });
    }
    wantHuman = false;
    scrollDown();
  }

  function drawEntry(entry, last) {
    if (entry.role === 'shopper') return shopperBubble(entry.text);
    if (entry.role === 'agent') return agentBubble(entry);
    var cut = takenOver[entry.message_id] || (entry.incomplete && agent);
    if (cut) takenOver[entry.message_id] = true;
    var retry = entry.incomplete && last && !cut;
    // A reply stopped before its first word (taken over) has nothing to show.
    if (entry.incomplete && !entry.text && !retry) return;
    var r = reply(entry.message_id);
    r.text = entry.text;
    r.done = true;
    r.li.dataset.state = 'done';
    draw(r);
    cards(r, entry.cards || []);
    if (retry) failed(r, t.interrupted);
    else if (entry.incomplete && cut) interrupted(r);
  }

  // The system lines that followed the message `id` (null: the start).
  function place(id) {
    notes.forEach(function (n) { if (n.after === id && !n.li.parentNode) ui.log.append(n.li); });
  }

  function shopperBubble(text, pending) {
    var li = el('li', 'msg shopper');
    li.append(el('span', 'sr', t.you + ': '));
    li.append(el('div', 'bubble', text));
    if (pending) li.append(el('span', 'meta', t.sending));
    ui.log.append(li);
    scrollDown();
    return li;
  }

  function makeBubble(r) {
    r.li = el('li', 'msg assistant');
    r.li.dataset.state = 'waiting';
    r.li.append(el('span', 'sr', t.bot + ': '));
    r.bubble = el('div', 'bubble');
    r.li.append(r.bubble);
  }

  function reply(id) {
    var r = replies[id];
    if (!r) {
      r = replies[id] = { id: id, text: '', seq: -1, done: false };
      if (typing && !typing.id) {
        // The placeholder becomes this reply.
        r.li = typing.li;
        r.bubble = typing.bubble;
        typing = r;
      } else {
        makeBubble(r);
        ui.log.append(r.li);
      }
    }
    return r;
  }

  function showTyping(r) {
    if (!r) {
      if (typing) return;
      r = { text: '', seq: -1, done: false };
      makeBubble(r);
      ui.log.append(r.li);
    }
    typing = r;
    var dots = el('div', 'typing');
    dots.setAttribute('role', 'img');
    dots.setAttribute('aria-label', t.typing);
    dots.append(el('i'), el('i'), el('i'));
    r.bubble.textContent = '';
    r.bubble.append(dots);
    scrollDown();
  }

  function draw(r) {
    r.bubble.textContent = '';
    r.bubble.append(markdown(r.text));
  }

  // Tokens are drawn at most once a frame.
  function drawSoon(r) {
    if (drawQueued[r.id]) return;
    drawQueued[r.id] = true;
    requestAnimationFrame(function () {
      delete drawQueued[r.id];
      var atBottom = ui.log.scrollHeight - ui.log.scrollTop - ui.log.clientHeight < 40;
      draw(r);
      if (atBottom) scrollDown();
    });
  }

  function onAck(f) {
    var i = outbox.findIndex(function (m) { return m.id === f.client_id; });
    if (i < 0) return;
    var m = outbox.splice(i, 1)[0];
    var meta = m.li.querySelector('.meta');
    if (meta) meta.remove();
    if (f.message_id) lastId = f.message_id;
    if (!streaming && !agent) showTyping();
  }

  function onToken(f) {
    var r = reply(f.reply_id);
    if (f.seq <= r.seq || r.done) return; // already shown
    if (typing === r) typing = null;
    streaming = r;
    lastId = r.id;
    r.li.dataset.state = 'streaming';
    r.seq = f.seq;
    r.text += f.text;
    drawSoon(r);
  }

  function onProducts(f) { cards(reply(f.reply_id), f.cards || []); }

  function cards(r, list) {
    var old = r.li.querySelector('.cards');
    if (old) old.remove();
    if (!list.length) return;
    var ul = el('ul', 'cards');
    list.forEach(function (c) {
      var url = webUrl(c.url);
      if (!url) return;
      var a = el('a');
      a.href = url.href;
      if (url.origin !== location.origin) { a.target = '_blank'; a.rel = 'noopener noreferrer'; }
      var image = webUrl(c.image);
      if (image) {
        var img = el('img');
        img.src = image.href;
        img.alt = '';
        img.loading = 'lazy';
        a.append(img);
      }
      var price = money(c.price, c.currency);
      if (c.price_max) price = t.from.replace('{p}', price);
      a.append(el('span', 'name', c.name), el('span', 'price', price));
      var li = el('li');
      li.append(a);
      ul.append(li);
    });
    r.li.append(ul);
    scrollDown();
  }

  function onDone(f) {
    var r = reply(f.reply_id);
    if (typing === r) typing = null;
    r.done = true;
    r.li.dataset.state = 'done';
    if (streaming === r) streaming = null;
    delete drawQueued[r.id];
    // A person took the conversation over mid-reply: what came stays, as is.
    if (f.finish_reason === 'taken_over') {
      takenOver[r.id] = true;
      if (!r.text) return r.li.remove();
      interrupted(r);
    }
    if (r.text) lastId = r.id;
    draw(r);
    announce(r.text);
    scrollDown();
  }

  function interrupted(r) {
    r.li.dataset.finish = 'taken_over';
    if (!r.li.querySelector('.cut')) r.li.append(el('span', 'meta cut', t.cut));
  }

  // Read out politely, once: `who` names the speaker ('' for none).
  function announce(text, who) {
    if (who === undefined) who = t.bot;
    ui.announce.textContent = '';
    setTimeout(function () { ui.announce.textContent = who ? who + ': ' + text : text; }, 50);
  }

  // ---- a person from the store ----

  // `{n}` in a string becomes the name (as is: no replacement patterns).
  function fill(text, name) { return text.replace('{n}', function () { return name || t.staff; }); }

  function setAgent(name) {
    agent = name || null;
    ui.panel.dataset.mode = agent ? 'agent' : 'assistant';
    ui.who.textContent = agent ? fill(t.answering, agent) : '';
    ui.human.hidden = !!agent;
    ui.human.disabled = asked;
  }

  // A system line: drawn now when `live`, else by the next redraw.
  function note(kind, text, after, live) {
    var li = el('li', 'msg system', text);
    li.dataset.event = kind;
    notes.push({ li: li, after: after });
    if (!live) return;
    ui.log.append(li);
    announce(text, '');
    scrollDown();
  }

  function agentBubble(m) {
    if (m.message_id) {
      if (shown[m.message_id]) return false;
      shown[m.message_id] = true;
    }
    var li = el('li', 'msg agent');
    if (m.message_id) li.dataset.id = m.message_id;
    var from = el('div', 'from');
    if (m.name) from.append(el('span', 'agent-name', m.name));
    from.append(el('span', 'badge', t.staff));
    li.append(from, el('div', 'bubble', m.text || ''));
    ui.log.append(li);
    return true;
  }

  // The assistant stops: no more "typing" for it (a reply cut short ends
  // with done `taken_over`).
  function quiet() {
    if (typing && !typing.text) typing.li.remove();
    typing = null;
  }

  function onAgentJoined(f) {
    quiet();
    asked = false;
    hideAgentTyping();
    setAgent(f.name || t.staff);
    note('agent_joined', fill(t.joined, agent), lastId, true);
  }

  function onAgentMessage(f) {
    if (!agent) { quiet(); setAgent(f.name || t.staff); }
    hideAgentTyping();
    if (!agentBubble(f)) return;
    if (f.message_id) lastId = f.message_id;
    announce(f.text || '', f.name || t.staff);
    scrollDown();
  }

  function onAgentTyping(f) {
    var text = fill(t.agentTyping, f.name || agent);
    if (ui.agentTyping.textContent !== text) ui.agentTyping.textContent = text;
    clearTimeout(agentTimer);
    agentTimer = setTimeout(hideAgentTyping, 4000);
  }

  function hideAgentTyping() {
    clearTimeout(agentTimer);
    ui.agentTyping.textContent = '';
  }

  function onHandedBack(f) {
    var name = agent;
    hideAgentTyping();
    setAgent(null);
    note('handed_back', f.reason === 'idle' && name ? fill(t.backIdle, name) : t.back, lastId, true);
  }

  function onHumanRequested() {
    if (asked) return;
    asked = true;
    setAgent(agent);
    note('human_requested', t.asked, lastId, true);
  }

  function requestHuman() {
    hideTools();
    if (agent || asked) return;
    ui.human.disabled = true;
    if (ws && ready) sendFrame({ type: 'request_human' });
    else { wantHuman = true; connect(); }
    ui.input.focus();
  }

  function failed(r, text) {
    r.li.dataset.state = 'failed';
    var note = el('p', 'note', text);
    note.append(button(t.retry, function () {
      note.remove();
      sendFrame({ type: 'retry' });
      showTyping();
    }));
    r.li.append(note);
  }

  function onError(f) {
    if (f.reply_id) {
      var r = reply(f.reply_id);
      if (typing === r) typing = null;
      r.done = true;
      if (streaming === r) streaming = null;
      if (r.text) draw(r); else r.li.remove();
      var holder = r.text ? r : { li: el('li', 'msg assistant') };
      if (!r.text) ui.log.append(holder.li);
      failed(holder, f.code === 'model_failed' ? t.interrupted : t.unavailable);
      announce(f.code === 'model_failed' ? t.interrupted : t.unavailable);
      return scrollDown();
    }
    var m = outbox.find(function (x) { return x.id === f.client_id; });
    // Both say "send it again in a moment": the message stays and goes
    // again when the wait is over.
    if (f.code === 'rate_limited' || f.code === 'storage_busy') {
      if (typing && !typing.id) { typing.li.remove(); typing = null; }
      return rateLimited(f.retry_after_ms || 5000);
    }
    if (m && f.code !== 'storage_failed') {
      outbox.splice(outbox.indexOf(m), 1);
      var meta = m.li.querySelector('.meta');
      if (meta) meta.textContent = t.failed + ': ' + f.message;
    }
  }

  // Shows when sending resumes and resends what waits, in order.
  function rateLimited(ms) {
    var until = Date.now() + ms;
    clearInterval(rateTimer);
    function tick() {
      var left = Math.ceil((until - Date.now()) / 1000);
      if (left > 0) return status(t.rate.replace('{s}', left));
      clearInterval(rateTimer);
      rateTimer = 0;
      status('');
      flushOutbox();
    }
    rateTimer = setInterval(tick, 1000);
    tick();
  }

  // Sends every message still waiting for its ack, in order (a resend
  // with the same client id is acknowledged once, never stored twice).
  function flushOutbox() {
    if (rateTimer) return;
    outbox.forEach(function (m) { sendFrame({ type: 'message', client_id: m.id, text: m.text }); });
  }

  function submit() {
    var text = ui.input.value.trim();
    if (!text) return;
    ui.input.value = '';
    var id = 'c' + Date.now().toString(36) + Math.random().toString(36).slice(2, 8);
    var m = { id: id, text: text, li: shopperBubble(text, true) };
    outbox.push(m);
    if (!rateTimer) sendFrame({ type: 'message', client_id: id, text: text });
    connect();
  }

  function start(settings) {
    // The dashboard's live preview shows settings not saved yet; they change
    // only how this page draws the widget.
    var preview = script.getAttribute('data-preview-settings');
    if (preview && settings) {
      try { var p = JSON.parse(preview); for (var k in p) settings[k] = p[k]; } catch (e) { /* saved settings */ }
    }
    if (settings) {
      ['title', 'color', 'greeting', 'avatar_url', 'position', 'url'].forEach(function (k) {
        if (typeof settings[k] === 'string' && settings[k]) cfg[k] = settings[k];
      });
    }
    var lang = locale.toLowerCase().split('-')[0];
    t = STRINGS[lang] || STRINGS[settings && settings.language] || STRINGS.en;
    build();
    // Back on a new page with the chat open: pick the conversation up.
    if (sessionId && load('sessionStorage', OPEN_KEY)) open(false);
  }

  function boot() {
    fetch(base.origin + '/v1/stores/' + encodeURIComponent(store) + '/widget', { credentials: 'omit' })
      .then(function (r) {
        if (r.status === 403 || r.status === 404) throw new Error('refused');
        return r.ok ? r.json() : null;
      })
      .then(start, function (e) {
        if (e.message !== 'refused') return start(null);
        if (window.console) console.warn('Mikabot: store "' + store + '" is unknown or does not allow this site (' + location.origin + ')');
      });
  }

  if (document.body) boot(); else document.addEventListener('DOMContentLoaded', boot);
})();
