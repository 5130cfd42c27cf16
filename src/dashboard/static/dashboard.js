// Mikabot dashboard: theme toggle (kept only with functional consent), copy
// buttons, and the catalog upload (file picker or drag and drop) that shows
// the import report with every rejected row. Loaded as a module: no inline
// script anywhere, so the CSP can forbid it.
const THEME_KEY = 'mikabot-theme';
const root = document.documentElement;
const functional = root.dataset.functional === 'true';
const csrf = document.querySelector('meta[name="csrf-token"]')?.content ?? '';

function storedTheme() {
  try { return localStorage.getItem(THEME_KEY); } catch { return null; }
}

function applyTheme(theme) {
  if (theme === 'dark' || theme === 'light') root.dataset.theme = theme; else delete root.dataset.theme;
  const toggle = document.getElementById('theme-toggle');
  if (toggle) {
    const dark = currentTheme() === 'dark';
    toggle.setAttribute('aria-pressed', String(dark));
    toggle.textContent = dark ? 'Light theme' : 'Dark theme';
  }
}

function currentTheme() {
  if (root.dataset.theme) return root.dataset.theme;
  return window.matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

if (functional) {
  applyTheme(storedTheme());
} else {
  // No functional consent (never given, or withdrawn): nothing is kept.
  try { localStorage.removeItem(THEME_KEY); } catch { /* storage blocked */ }
  applyTheme(null);
}

document.getElementById('theme-toggle')?.addEventListener('click', () => {
  const next = currentTheme() === 'dark' ? 'light' : 'dark';
  applyTheme(next);
  if (functional) {
    try { localStorage.setItem(THEME_KEY, next); } catch { /* storage blocked */ }
  }
});

for (const button of document.querySelectorAll('[data-copy]')) {
  button.addEventListener('click', async () => {
    const id = button.dataset.copy;
    const text = document.getElementById(id)?.textContent ?? '';
    const status = document.querySelector(`[data-copied-for="${id}"]`);
    try {
      await navigator.clipboard.writeText(text);
      if (status) status.textContent = 'Copied.';
    } catch {
      const range = document.createRange();
      range.selectNodeContents(document.getElementById(id));
      const selection = getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      if (status) status.textContent = 'Selected: press Ctrl+C (or Cmd+C) to copy.';
    }
  });
}

// The settings' live preview: the widget redrawn with the form's unsaved
// look, a moment after the owner stops typing.
const settingsForm = document.getElementById('settings-form');
const previewFrame = document.querySelector('iframe[data-preview]');
if (settingsForm && previewFrame) {
  const base = previewFrame.getAttribute('src');
  let timer = null;
  const redraw = () => {
    const query = new URLSearchParams();
    for (const name of ['color', 'title', 'avatar_url', 'greeting', 'position', 'language']) {
      const field = settingsForm.elements.namedItem(name);
      if (field) query.set(name, field.value);
    }
    previewFrame.setAttribute('src', `${base}?${query}`);
  };
  settingsForm.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(redraw, 400);
  });
}

function cell(row, text) {
  const td = document.createElement('td');
  td.textContent = text ?? '';
  row.append(td);
}

function showReport(target, status, body) {
  target.replaceChildren();
  const box = document.createElement('div');
  box.className = 'report';
  const summary = document.createElement('p');
  summary.className = 'ok';
  const report = body && typeof body === 'object' ? body : {};
  if (status >= 200 && status < 300) {
    summary.textContent = `Imported ${report.imported ?? 0} products; ${report.rejected_count ?? 0} rows rejected.`;
  } else {
    summary.textContent = body?.error?.message ?? `The upload failed (HTTP ${status}).`;
    summary.setAttribute('role', 'alert');
  }
  box.append(summary);
  const rejected = Array.isArray(report.rejected) ? report.rejected : [];
  if (rejected.length > 0) {
    const table = document.createElement('table');
    const caption = document.createElement('caption');
    caption.textContent = 'Rejected rows';
    table.append(caption);
    const head = table.createTHead().insertRow();
    for (const title of ['Row', 'Id', 'Field', 'Reason']) {
      const th = document.createElement('th');
      th.scope = 'col';
      th.textContent = title;
      head.append(th);
    }
    const tbody = table.createTBody();
    for (const row of rejected) {
      const tr = tbody.insertRow();
      cell(tr, String(row.row ?? ''));
      cell(tr, row.id ?? '');
      cell(tr, row.field ?? '');
      cell(tr, row.reason ?? '');
    }
    box.append(table);
  }
  target.append(box);
}

const upload = document.getElementById('catalog-upload');
if (upload) {
  const input = upload.querySelector('input[type=file]');
  const drop = upload.querySelector('[data-drop]');
  const report = document.getElementById('import-report');
  let dropped = null;
  drop.addEventListener('dragover', (event) => { event.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (event) => {
    event.preventDefault();
    drop.classList.remove('over');
    dropped = event.dataTransfer?.files?.[0] ?? null;
    if (dropped) drop.querySelector('label').textContent = `Chosen: ${dropped.name}`;
  });
  input.addEventListener('change', () => { dropped = null; });
  upload.addEventListener('submit', async (event) => {
    event.preventDefault();
    const file = dropped ?? input.files?.[0];
    if (!file) {
      showReport(report, 400, { error: { message: 'Choose a feed file first.' } });
      return;
    }
    const mode = upload.querySelector('input[name=mode]:checked')?.value ?? 'all_or_nothing';
    report.textContent = 'Uploading…';
    try {
      const response = await fetch(`${upload.dataset.action}?mode=${encodeURIComponent(mode)}`, {
        method: 'PUT',
        headers: { 'X-CSRF-Token': csrf },
        body: file,
        credentials: 'same-origin',
      });
      let body = null;
      try { body = await response.json(); } catch { body = null; }
      showReport(report, response.status, body);
    } catch (error) {
      showReport(report, 0, { error: { message: `The upload failed: ${error.message}` } });
    }
  });
}
