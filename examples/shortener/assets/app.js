// The shortener's pages: `/` (shorten a link), `/links` (recent links) and
// `/links/:slug/live` (a link's clicks as they happen).
// Plain JavaScript with no build step: the server's CSP allows scripts from
// 'self' only, so there is no inline script anywhere. The DOM is built with
// textContent, never innerHTML, so nothing the API returns is parsed as HTML.
'use strict';

(function () {
  var KEY_STORAGE = 'shortener.apiKey';

  function byId(id) {
    return document.getElementById(id);
  }

  function el(tag, text, className) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  // localStorage throws when storage is blocked (some private modes): the
  // page still works, it just cannot remember the key.
  function readKey() {
    try {
      return window.localStorage.getItem(KEY_STORAGE) || '';
    } catch (e) {
      return '';
    }
  }

  function writeKey(value) {
    try {
      if (value) window.localStorage.setItem(KEY_STORAGE, value);
      else window.localStorage.removeItem(KEY_STORAGE);
      return true;
    } catch (e) {
      return false;
    }
  }

  function ApiError(status, code, message) {
    this.status = status;
    this.code = code;
    this.message = message;
  }

  // One call to the JSON API. Resolves to {status, data}; rejects with an
  // ApiError carrying the API's own message (errors are
  // {"error": {"code", "message"}}).
  function api(method, path, body) {
    var headers = { Accept: 'application/json' };
    var key = readKey();
    if (key) headers.Authorization = 'Bearer ' + key;
    var init = { method: method, headers: headers, credentials: 'same-origin', cache: 'no-store' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).then(
      function (res) {
        return res.text().then(function (text) {
          var data = null;
          try {
            data = text ? JSON.parse(text) : null;
          } catch (e) {
            data = null;
          }
          if (res.ok) return { status: res.status, data: data };
          var err = data && data.error;
          throw new ApiError(
            res.status,
            (err && err.code) || 'http_' + res.status,
            (err && err.message) || 'The server answered ' + res.status + ' ' + res.statusText + '.'
          );
        });
      },
      function () {
        throw new ApiError(0, 'network', 'Could not reach the server. Check your connection and try again.');
      }
    );
  }

  function isAuthError(err) {
    return err && (err.status === 401 || err.status === 403);
  }

  function showError(node, err) {
    var text = err.message || String(err);
    if (isAuthError(err)) {
      // API messages may end without a full stop; the hint is a sentence.
      if (!/[.!?]$/.test(text)) text += '.';
      text += readKey()
        ? ' Check the API key under “API key” at the bottom of the page.'
        : ' Set an API key under “API key” at the bottom of the page.';
      var box = byId('api-key-box');
      if (box) box.open = true;
    }
    node.textContent = text;
    node.hidden = false;
  }

  function hideError(node) {
    node.hidden = true;
    node.textContent = '';
  }

  // Only http(s) addresses become links: the API validates them, and this
  // keeps a javascript: URL from ever reaching an href.
  function safeHref(url) {
    return /^https?:\/\//i.test(url || '') ? url : null;
  }

  function formatDate(iso) {
    var d = new Date(iso);
    if (isNaN(d.getTime())) return String(iso);
    try {
      return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
    } catch (e) {
      return d.toLocaleString();
    }
  }

  // Puts the text of `node` in the selection, so that the user can copy it
  // by hand when no clipboard API works.
  function selectText(node) {
    var range = document.createRange();
    range.selectNodeContents(node);
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
  }

  function copyText(text, node) {
    var viaApi =
      navigator.clipboard && window.isSecureContext
        ? navigator.clipboard.writeText(text).then(
            function () {
              return true;
            },
            function () {
              return false;
            }
          )
        : Promise.resolve(false);
    return viaApi.then(function (ok) {
      if (ok) return true;
      selectText(node);
      try {
        return document.execCommand('copy');
      } catch (e) {
        return false;
      }
    });
  }

  // ---- API key box (both pages) ----

  function initKeyBox(onChange) {
    var form = byId('api-key-form');
    if (!form) return;
    var input = byId('api-key');
    var status = byId('api-key-status');
    var summary = byId('api-key-box').querySelector('summary');
    function refresh(message) {
      summary.textContent = readKey() ? 'API key (set)' : 'API key';
      status.textContent = message || '';
    }
    input.value = readKey();
    refresh();
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      var value = input.value.trim();
      // A header value must be printable ASCII: fetch() would throw otherwise.
      if (value && !/^[\x21-\x7e]+$/.test(value)) {
        refresh('A key is printable ASCII without spaces.');
        return;
      }
      input.value = value;
      if (!writeKey(value)) {
        refresh('This browser blocks storage: the key cannot be kept.');
        return;
      }
      refresh(value ? 'Saved' : 'Forgotten');
      onChange();
    });
    byId('api-key-clear').addEventListener('click', function () {
      input.value = '';
      writeKey('');
      refresh('Forgotten');
      onChange();
    });
  }

  // ---- `/`: shorten a link ----

  // The QR code needs the API key like every API read, which an <img src>
  // cannot send: fetched here, shown as a data: URL (the CSP allows them).
  function showQr(img, link) {
    img.removeAttribute('src');
    img.alt = 'QR code for ' + link.short_url;
    var headers = {};
    var key = readKey();
    if (key) headers.Authorization = 'Bearer ' + key;
    var path = '/api/links/' + encodeURIComponent(link.slug) + '/qr.svg';
    fetch(path, { headers: headers, credentials: 'same-origin' })
      .then(function (res) {
        if (!res.ok) throw new Error('QR code: ' + res.status);
        return res.text();
      })
      .then(function (svg) {
        img.src = 'data:image/svg+xml;charset=utf-8,' + encodeURIComponent(svg);
      })
      .catch(function () {
        img.alt = '';
      });
  }

  function localMinute(date) {
    var shifted = new Date(date.getTime() - date.getTimezoneOffset() * 60000);
    return shifted.toISOString().slice(0, 16);
  }

  function initShorten() {
    var form = byId('shorten-form');
    if (!form) return false;
    var urlInput = byId('url');
    var slugInput = byId('slug');
    var expiresInput = byId('expires');
    var passwordInput = byId('password');
    var button = byId('shorten-button');
    var error = byId('form-error');
    var result = byId('result');
    var shortLink = byId('short-link');
    var copyStatus = byId('copy-status');
    var copyTimer = 0;

    expiresInput.min = localMinute(new Date());

    function fail(message, input) {
      showError(error, new ApiError(0, 'form', message));
      if (input) input.focus();
    }

    function showResult(link, existing) {
      shortLink.textContent = link.short_url;
      var href = safeHref(link.short_url);
      if (href) shortLink.href = href;
      else shortLink.removeAttribute('href');
      byId('result-target').textContent = link.url;
      showQr(byId('qr'), link);
      var note = byId('result-note');
      var notes = [];
      if (existing) notes.push('This URL was shortened before: here is the same link.');
      if (link.protected) notes.push('Visitors will be asked for the password.');
      if (link.expires_at) notes.push('Expires ' + formatDate(link.expires_at) + '.');
      note.textContent = notes.join(' ');
      note.hidden = notes.length === 0;
      copyStatus.textContent = '';
      result.hidden = false;
      byId('result-title').focus();
    }

    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      hideError(error);
      var url = urlInput.value.trim();
      if (!url) return fail('Enter the URL to shorten.', urlInput);
      // "example.com/x" is what people paste; the API wants a scheme.
      if (url.indexOf('://') < 0) url = 'https://' + url;
      var body = { url: url };
      var slug = slugInput.value.trim();
      if (slug) body.slug = slug;
      if (expiresInput.value) {
        var when = new Date(expiresInput.value);
        if (isNaN(when.getTime())) return fail('Pick a valid expiry date and time.', expiresInput);
        body.expires_at = when.toISOString().replace(/\.\d{3}Z$/, 'Z');
      }
      if (passwordInput.value) body.password = passwordInput.value;

      button.disabled = true;
      form.setAttribute('aria-busy', 'true');
      api('POST', '/api/links', body)
        .then(function (answer) {
          form.reset();
          byId('options').open = false;
          showResult(answer.data, answer.status === 200);
        })
        .catch(function (err) {
          showError(error, err instanceof ApiError ? err : new ApiError(0, 'client', String(err)));
        })
        .then(function () {
          button.disabled = false;
          form.removeAttribute('aria-busy');
        });
    });

    byId('copy-button').addEventListener('click', function () {
      copyText(shortLink.textContent, shortLink).then(function (ok) {
        copyStatus.textContent = ok ? 'Copied' : 'Selected: press Ctrl+C (⌘C) to copy';
        window.clearTimeout(copyTimer);
        copyTimer = window.setTimeout(function () {
          copyStatus.textContent = '';
        }, 4000);
      });
    });
    return true;
  }

  // ---- `/links`: recent links ----

  function badge(text, warn) {
    return el('span', text, warn ? 'badge warn' : 'badge');
  }

  function linkRow(link) {
    var tr = el('tr');
    tr.dataset.slug = link.slug;

    var shortCell = el('td', null, 'nowrap');
    var shortA = el('a', link.slug);
    var shortHref = safeHref(link.short_url);
    if (shortHref) shortA.href = shortHref;
    shortA.title = link.short_url;
    shortCell.appendChild(shortA);

    var targetCell = el('td');
    var target = el('a', link.url, 'truncate');
    var targetHref = safeHref(link.url);
    if (targetHref) target.href = targetHref;
    target.title = link.url;
    target.rel = 'noopener noreferrer';
    targetCell.appendChild(target);

    var clicks = Number(link.clicks) || 0;
    var clicksCell = el('td', clicks.toLocaleString(), 'num clicks');
    clicksCell.dataset.clicks = String(clicks);
    var live = el('a', 'live', 'live-link');
    live.href = '/links/' + encodeURIComponent(link.slug) + '/live';
    live.setAttribute('aria-label', 'Live clicks of ' + link.slug);
    clicksCell.appendChild(document.createTextNode(' '));
    clicksCell.appendChild(live);

    var createdCell = el('td', null, 'nowrap');
    var time = el('time', formatDate(link.created_at));
    time.dateTime = link.created_at;
    time.title = link.created_at;
    createdCell.appendChild(time);

    var statusCell = el('td', null, 'badges');
    var badges = [];
    if (link.disabled) badges.push(badge('disabled', true));
    if (link.expires_at) {
      var expires = new Date(link.expires_at);
      badges.push(
        expires.getTime() <= Date.now()
          ? badge('expired', true)
          : badge('expires ' + formatDate(link.expires_at), false)
      );
    }
    if (link.max_clicks !== null && link.max_clicks !== undefined) {
      badges.push(
        clicks >= link.max_clicks
          ? badge('click limit reached', true)
          : badge(clicks + ' of ' + link.max_clicks + ' clicks', false)
      );
    }
    if (link.protected) badges.push(badge('password', false));
    if (badges.length === 0) badges.push(el('span', 'active', 'muted'));
    badges.forEach(function (b) {
      statusCell.appendChild(b);
    });

    // Explicit roles and labels: on a phone the stylesheet lays rows out as
    // cards (display: block), which makes some browsers drop the table
    // semantics unless the roles are spelled out; the labels head each cell.
    tr.setAttribute('role', 'row');
    var labels = ['Short link', 'Target', 'Clicks', 'Created', 'Status'];
    [shortCell, targetCell, clicksCell, createdCell, statusCell].forEach(function (cell, i) {
      cell.setAttribute('role', 'cell');
      cell.dataset.label = labels[i];
      tr.appendChild(cell);
    });
    return tr;
  }

  function initLinks() {
    var tbody = byId('links-body');
    if (!tbody) return null;
    var table = byId('links-table');
    var more = byId('load-more');
    var empty = byId('links-empty');
    var error = byId('list-error');
    var cursor = null;
    // Counts loads so that an answer to a list the user has since restarted
    // (by saving a key) is dropped.
    var generation = 0;

    function load() {
      var mine = generation;
      var path = '/api/links?limit=50' + (cursor ? '&cursor=' + encodeURIComponent(cursor) : '');
      more.disabled = true;
      table.setAttribute('aria-busy', 'true');
      return api('GET', path)
        .then(function (answer) {
          if (mine !== generation) return;
          hideError(error);
          var links = (answer.data && answer.data.links) || [];
          var first = null;
          links.forEach(function (link) {
            var row = linkRow(link);
            if (!first) first = row;
            tbody.appendChild(row);
          });
          cursor = (answer.data && answer.data.next_cursor) || null;
          // Hiding a focused "Load more" would drop keyboard focus to the
          // top of the page: hand it to the first row that just arrived.
          var hadFocus = document.activeElement === more;
          more.hidden = !cursor;
          if (hadFocus && more.hidden && first) first.querySelector('a').focus();
          empty.hidden = tbody.rows.length > 0;
        })
        .catch(function (err) {
          if (mine !== generation) return;
          showError(error, err instanceof ApiError ? err : new ApiError(0, 'client', String(err)));
        })
        .then(function () {
          if (mine !== generation) return;
          more.disabled = false;
          table.setAttribute('aria-busy', 'false');
        });
    }

    function restart() {
      generation += 1;
      cursor = null;
      tbody.textContent = '';
      more.hidden = true;
      empty.hidden = true;
      load();
    }

    more.addEventListener('click', function () {
      load();
    });
    load();
    return restart;
  }

  // ---- `/links/:slug/live`: clicks as they happen ----

  // A tolerant `text/event-stream` reader (WHATWG HTML §9.2.6): lines end
  // at CRLF, CR or LF; a field's value loses one leading space; `data`
  // lines join with LF; a blank line dispatches the event (none without
  // data); comments and unknown fields are skipped. EventSource itself
  // cannot send the Authorization header, hence this reader over fetch().
  function EventStreamReader(onEvent) {
    this.onEvent = onEvent;
    this.buffer = '';
    this.type = '';
    this.data = [];
    this.pendingId = null;
    this.lastEventId = '';
    this.retry = null;
  }

  EventStreamReader.prototype.push = function (text) {
    this.buffer += text;
    for (;;) {
      var end = this.buffer.search(/[\r\n]/);
      if (end < 0) break;
      var crlf = this.buffer.charAt(end) === '\r';
      // A CR at the end of what arrived may be half of a CRLF.
      if (crlf && end === this.buffer.length - 1) break;
      var next = crlf && this.buffer.charAt(end + 1) === '\n' ? end + 2 : end + 1;
      var line = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(next);
      this.line(line);
    }
  };

  EventStreamReader.prototype.line = function (line) {
    if (line === '') {
      if (this.pendingId !== null) this.lastEventId = this.pendingId;
      this.pendingId = null;
      if (this.data.length) {
        this.onEvent({ type: this.type || 'message', data: this.data.join('\n'), id: this.lastEventId });
      }
      this.type = '';
      this.data = [];
      return;
    }
    if (line.charAt(0) === ':') return;
    var colon = line.indexOf(':');
    var field = colon < 0 ? line : line.slice(0, colon);
    var value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.charAt(0) === ' ') value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.type = value;
    else if (field === 'id' && value.indexOf('\0') < 0) this.pendingId = value;
    else if (field === 'retry' && /^\d+$/.test(value)) this.retry = Number(value);
  };

  var MAX_LISTED_CLICKS = 50;

  function initLive() {
    var counter = byId('live-clicks');
    if (!counter) return null;
    var match = /^\/links\/([^/]+)\/live\/?$/.exec(window.location.pathname);
    var slug = '';
    try {
      slug = match ? decodeURIComponent(match[1]) : '';
    } catch (e) {
      slug = '';
    }
    var automated = byId('live-automated');
    var status = byId('live-status');
    var error = byId('live-error');
    var list = byId('live-list');
    var empty = byId('live-empty');
    byId('live-slug').textContent = slug;
    document.title = 'Live clicks: ' + slug;

    var controller = null;
    var lastEventId = '';
    var shown = null; // the click total on screen
    var delay = 1000; // before the next reconnect; the server may set it
    var timer = 0;
    var generation = 0;

    function setStatus(text) {
      status.textContent = text;
    }

    function listClick(data, added) {
      var last = data.last || {};
      var text = added > 1 ? added + ' clicks' : last.automated ? 'A preview or crawler' : 'A click';
      if (last.referrer) text += ' from ' + last.referrer;
      var item = el('li', text);
      if (typeof last.at === 'number') {
        var when = new Date(last.at * 1000);
        var time = el('time', ', ' + when.toLocaleTimeString());
        time.dateTime = when.toISOString();
        item.appendChild(time);
      }
      list.insertBefore(item, list.firstChild);
      while (list.children.length > MAX_LISTED_CLICKS) list.removeChild(list.lastChild);
      empty.hidden = true;
    }

    function show(event) {
      var data;
      try {
        data = JSON.parse(event.data);
      } catch (e) {
        return; // tolerant: a line we cannot read is skipped
      }
      if (!data || typeof data.clicks !== 'number') return;
      if (event.type === 'click') {
        var added = shown === null ? 1 : data.clicks - shown;
        if (added > 0 || (data.last && data.last.automated)) listClick(data, Math.max(added, 1));
      }
      shown = data.clicks;
      counter.textContent = data.clicks.toLocaleString();
      counter.dataset.clicks = String(data.clicks);
      automated.textContent = String(data.automated);
    }

    function retryLater(mine, wait) {
      if (mine !== generation) return;
      window.clearTimeout(timer);
      setStatus('Disconnected; reconnecting…');
      timer = window.setTimeout(function () {
        connect();
      }, wait);
      delay = Math.min(delay * 2, 30000);
    }

    function failed(mine, res) {
      return res.text().then(function (text) {
        if (mine !== generation) return;
        var data = null;
        try {
          data = JSON.parse(text);
        } catch (e) {
          data = null;
        }
        var err = (data && data.error) || {};
        var message = err.message || 'The server answered ' + res.status + ' ' + res.statusText + '.';
        showError(error, new ApiError(res.status, err.code || 'http_' + res.status, message));
        // Too many watchers or a busy server pass; a wrong key or a
        // missing link do not: wait for the user.
        if (res.status === 429 || res.status === 503) {
          var after = Number(res.headers.get('Retry-After'));
          retryLater(mine, after > 0 ? after * 1000 : delay);
        } else {
          setStatus('Stopped.');
        }
      });
    }

    function connect() {
      generation += 1;
      var mine = generation;
      if (controller) controller.abort();
      controller = new AbortController();
      if (!slug) {
        showError(error, new ApiError(0, 'client', 'This address names no short link.'));
        setStatus('Stopped.');
        return;
      }
      var headers = { Accept: 'text/event-stream' };
      var key = readKey();
      if (key) headers.Authorization = 'Bearer ' + key;
      if (lastEventId) headers['Last-Event-ID'] = lastEventId;
      var reader = new EventStreamReader(show);
      var path = '/api/links/' + encodeURIComponent(slug) + '/live';
      setStatus('Connecting…');
      fetch(path, { headers: headers, credentials: 'same-origin', cache: 'no-store', signal: controller.signal })
        .then(function (res) {
          if (mine !== generation) return null;
          if (!res.ok) return failed(mine, res);
          if (!res.body) throw new Error('this browser cannot read a streamed answer');
          hideError(error);
          setStatus('Live');
          var bytes = res.body.getReader();
          var decoder = new TextDecoder();
          function pump() {
            return bytes.read().then(function (chunk) {
              if (mine !== generation) return bytes.cancel();
              if (chunk.done) return retryLater(mine, reader.retry || delay);
              reader.push(decoder.decode(chunk.value, { stream: true }));
              if (reader.lastEventId) lastEventId = reader.lastEventId;
              delay = 1000; // it works: the next drop retries soon
              return pump();
            });
          }
          return pump();
        })
        .catch(function () {
          if (mine === generation) retryLater(mine, reader.retry || delay);
        });
    }

    connect();
    return function restart() {
      window.clearTimeout(timer);
      delay = 1000;
      connect();
    };
  }

  function start() {
    var restartList = initLinks();
    var restartLive = initLive();
    initShorten();
    initKeyBox(function () {
      if (restartList) restartList();
      if (restartLive) restartLive();
    });
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
