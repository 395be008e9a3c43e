// kiln preview page: renders the state kiln watch publishes over
// Server-Sent Events. Every text from the project is set with textContent,
// never parsed as HTML.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);

  // el builds an element: el('div', {class: 'x', onclick: f}, child, 'text').
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  // outURL is the address of an output file, with its version so a
  // changed file is never shown from the browser cache.
  function outURL(f) {
    const p = f.path.split('/').map(encodeURIComponent).join('/');
    return '/out/' + p + (f.version ? '?v=' + encodeURIComponent(f.version) : '');
  }

  const fmtMS = (ms) => ms >= 60000 ? (ms / 60000).toFixed(1) + ' min'
    : ms >= 1000 ? (ms / 1000).toFixed(1) + ' s'
    : ms >= 10 ? Math.round(ms) + ' ms' : ms.toFixed(1) + ' ms';

  // ---- Sprite animation: one clock for every sprite on the page. ----
  const sprites = new Set();
  let spriteFrame = 0;
  function tickSprites(now) {
    spriteFrame = 0;
    for (const s of sprites) s.tick(now);
    if (sprites.size) spriteFrame = requestAnimationFrame(tickSprites);
  }
  function startSprites() {
    if (!spriteFrame && sprites.size) spriteFrame = requestAnimationFrame(tickSprites);
  }

  // spriteView animates a sprite sheet at its fps: from separate frame
  // files, or by cutting the sheet into its grid.
  function spriteView(sp, view, overlay) {
    const canvas = el('canvas', {class: 'sprite', 'data-frames': sp.frames});
    const ctx = canvas.getContext('2d');
    const n = Math.max(1, sp.frames || (sp.frame_files || []).length || 1);
    const fps = sp.fps > 0 ? sp.fps : 12;
    let images = [], sheet = null, ready = false, playing = true, start = performance.now(), shown = -1;
    const counter = el('span', {text: `1/${n} · ${fps} fps`});
    const play = el('button', {type: 'button', text: 'pause', title: 'Play or pause the animation'});
    play.addEventListener('click', () => {
      playing = !playing;
      play.textContent = playing ? 'pause' : 'play';
      start = performance.now() - shown * 1000 / fps;
      if (playing) startSprites();
    });
    overlay.append(counter, play);

    function draw(i) {
      if (!ready || i === shown) return;
      shown = i;
      let src, sx = 0, sy = 0, w, h;
      if (images.length) {
        src = images[i % images.length]; w = src.naturalWidth; h = src.naturalHeight;
      } else {
        const cols = Math.max(1, sp.columns || Math.ceil(Math.sqrt(n)));
        const rows = Math.max(1, sp.rows || Math.ceil(n / cols));
        src = sheet; w = Math.floor(sheet.naturalWidth / cols); h = Math.floor(sheet.naturalHeight / rows);
        sx = (i % cols) * w; sy = Math.floor(i / cols) * h;
      }
      if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
      ctx.imageSmoothingEnabled = !sp.pixel_art;
      ctx.clearRect(0, 0, w, h);
      ctx.drawImage(src, sx, sy, w, h, 0, 0, w, h);
      canvas.dataset.frame = String(i);
      counter.textContent = `${i + 1}/${n} · ${fps} fps`;
    }
    const entry = {
      tick(now) {
        if (!playing || !document.contains(canvas)) return;
        let i = Math.floor((now - start) * fps / 1000);
        if (sp.loop === false && i >= n) {
          // Not a loop: hold the last frame for a second, then replay.
          if (i < n + fps) i = n - 1; else { start = now; i = 0; }
        }
        draw(((i % n) + n) % n);
      },
    };
    const load = (f) => new Promise((resolve, reject) => {
      const img = new Image();
      img.onload = () => resolve(img);
      img.onerror = () => reject(new Error('cannot load ' + f.path));
      img.src = outURL(f);
    });
    const files = sp.frame_files && sp.frame_files.length ? sp.frame_files : null;
    (files ? Promise.all(files.map(load)).then((imgs) => { images = imgs; })
      : sp.sheet ? load(sp.sheet).then((img) => { sheet = img; })
      : Promise.reject(new Error('no frames published')))
      .then(() => { ready = true; draw(0); sprites.add(entry); startSprites(); })
      .catch((err) => { view.append(el('div', {class: 'note', text: err.message})); });
    entry.dispose = () => sprites.delete(entry);
    return [canvas, entry];
  }

  // tiledView shows a seamless image repeated (2×2 for xy, 2×1 or 1×2
  // for one axis), with a button for a single tile and one for the seams.
  function tiledView(f, tile, view, overlay) {
    const d = el('div', {class: 'tiled', 'data-tile': tile, role: 'img', 'aria-label': f.label || f.path});
    const x = tile.includes('x'), y = tile.includes('y');
    let tiled = true;
    const apply = () => {
      d.style.backgroundImage = `url("${outURL(f)}")`;
      d.style.backgroundSize = tiled ? `${x ? 50 : 100}% ${y ? 50 : 100}%` : 'contain';
      d.style.backgroundRepeat = tiled ? (x && y ? 'repeat' : x ? 'repeat-x' : 'repeat-y') : 'no-repeat';
      d.style.backgroundPosition = tiled ? '0 0' : 'center';
      view.classList.toggle('seams', tiled && seams);
    };
    let seams = false;
    const label = `${x ? 2 : 1}×${y ? 2 : 1}`;
    const tb = el('button', {type: 'button', text: label, title: 'Toggle tiled and single view'});
    tb.addEventListener('click', () => { tiled = !tiled; tb.textContent = tiled ? label : '1×1'; apply(); });
    const sb = el('button', {type: 'button', text: 'seams', title: 'Mark where the tiles meet'});
    sb.addEventListener('click', () => { seams = !seams; apply(); });
    overlay.append(tb, sb);
    apply();
    return d;
  }

  function imageView(f) {
    return el('a', {href: outURL(f), target: '_blank', rel: 'noopener', title: 'Open full size'},
      el('img', {src: outURL(f), alt: f.label || f.path, loading: 'lazy', decoding: 'async'}));
  }

  function badge(status) { return el('span', {class: 'badge ' + (status || 'pending'), text: status || 'pending'}); }

  function stagesBlock(stages) {
    if (!stages || !stages.length) return null;
    const total = stages.reduce((s, x) => s + (x.duration_ms || 0), 0);
    return el('details', {class: 'stages'},
      el('summary', {text: `${stages.length} stage${stages.length > 1 ? 's' : ''} · ${fmtMS(total)}`}),
      el('table', {}, stages.map((s) => el('tr', {},
        el('td', {class: 'id mono', text: s.id, title: s.kind}),
        el('td', {}, badge(s.status)),
        el('td', {class: 'num', text: fmtMS(s.duration_ms || 0)})))));
  }

  function errorsBlock(list) {
    if (!list || !list.length) return null;
    return el('pre', {class: 'errors', text: list.join('\n')});
  }

  function filesBlock(files) {
    if (!files || !files.length) return null;
    return el('div', {class: 'meta'}, files.map((f) =>
      el('a', {href: outURL(f), target: '_blank', rel: 'noopener', text: f.label || f.path.split('/').pop(), title: f.path})));
  }

  function stageErrors(entry) {
    const own = entry.errors || [];
    const fromStages = (entry.stages || []).filter((s) => s.error && !own.includes(s.error)).map((s) => s.error);
    return own.concat(fromStages);
  }

  function cardShell(kind, entry, extraClass) {
    const card = el('article', {class: 'card ' + (entry.status === 'failed' ? 'failed ' : '') + (extraClass || ''),
      'data-id': entry.id, 'data-kind': kind, 'data-status': entry.status || 'pending'});
    card.append(el('header', {},
      el('h3', {text: entry.id, title: entry.where ? `${entry.id} — ${entry.where}` : entry.id}),
      badge(entry.status)));
    return card;
  }

  // assetCard renders one asset; it returns the card and a dispose
  // function that stops its animation.
  function assetCard(a) {
    const card = cardShell(a.kind, a);
    const view = el('div', {class: 'view' + (a.sprite && a.sprite.pixel_art ? ' pixel' : '')});
    const overlay = el('div', {class: 'overlay'});
    let dispose = () => {};
    const images = a.images || [];
    let main = null;
    const show = (f) => {
      if (main) main.remove();
      main = a.tile ? tiledView(f, a.tile, view, overlay) : imageView(f);
      view.prepend(main);
    };
    if (a.sprite && (a.sprite.sheet || (a.sprite.frame_files || []).length)) {
      const [canvas, entry] = spriteView(a.sprite, view, overlay);
      view.append(canvas);
      dispose = entry.dispose;
    } else if (images.length) {
      show(images[0]);
    } else {
      view.append(el('div', {class: 'none', text: a.status === 'failed' ? 'no output: the build failed' : 'no image yet'}));
    }
    view.append(overlay);
    card.append(view);
    // Other images of the asset (texture maps, variations, the sheet of
    // a sprite) as thumbnails; a click shows one in the main view.
    const extra = a.sprite ? images : images.length > 1 ? images : [];
    if (extra.length) {
      const thumbs = el('div', {class: 'thumbs'});
      extra.forEach((f, i) => {
        const b = el('button', {type: 'button', class: !a.sprite && i === 0 ? 'on' : '', title: f.label || f.path},
          el('img', {src: outURL(f), alt: '', loading: 'lazy'}), el('span', {text: f.label || ''}));
        b.addEventListener('click', () => {
          if (a.sprite) { window.open(outURL(f), '_blank', 'noopener'); return; }
          thumbs.querySelectorAll('button').forEach((x) => x.classList.remove('on'));
          b.classList.add('on');
          overlay.textContent = '';
          show(f);
        });
        thumbs.append(b);
      });
      card.append(thumbs);
    }
    const meta = [a.kind];
    if (a.tile) meta.push(`tiles ${a.tile}`);
    if (a.sprite) meta.push(`${a.sprite.frames} frames · ${a.sprite.fps} fps${a.sprite.loop === false ? '' : ' · loop'}`);
    if (a.where) meta.push(a.where);
    card.append(el('div', {class: 'body'},
      a.prompt ? el('p', {class: 'prompt', text: a.prompt, title: a.prompt}) : null,
      errorsBlock(stageErrors(a)),
      el('div', {class: 'meta'}, meta.map((m, i) => el('span', {class: i === 0 ? 'kind' : '', text: m}))),
      filesBlock(a.files),
      stagesBlock(a.stages)));
    return [card, dispose];
  }

  function atlasCard(a) {
    const card = cardShell('atlas', a);
    const view = el('div', {class: 'view atlas'});
    const pages = a.pages || [];
    if (pages.length) view.append(imageView(pages[0]));
    else view.append(el('div', {class: 'none', text: a.status === 'failed' ? 'no pages: the build failed' : 'no pages yet'}));
    card.append(view);
    if (pages.length > 1) {
      const thumbs = el('div', {class: 'thumbs'});
      pages.forEach((f, i) => {
        const b = el('button', {type: 'button', class: i === 0 ? 'on' : '', title: f.path},
          el('img', {src: outURL(f), alt: ''}), el('span', {text: f.label || `page ${i + 1}`}));
        b.addEventListener('click', () => {
          thumbs.querySelectorAll('button').forEach((x) => x.classList.remove('on'));
          b.classList.add('on');
          view.textContent = '';
          view.append(imageView(f));
        });
        thumbs.append(b);
      });
      card.append(thumbs);
    }
    card.append(el('div', {class: 'body'},
      errorsBlock(stageErrors(a)),
      el('div', {class: 'meta'}, el('span', {class: 'kind', text: 'atlas'}), a.where ? el('span', {text: a.where}) : null),
      (a.assets || []).length ? el('div', {class: 'meta'}, el('span', {text: `${a.assets.length} images: ${a.assets.slice(0, 8).join(', ')}${a.assets.length > 8 ? ', …' : ''}`})) : null,
      filesBlock(a.files),
      stagesBlock(a.stages)));
    return [card, () => {}];
  }

  // Material viewers start when their card scrolls into view, so a page
  // of many materials does not open dozens of WebGL contexts at once.
  const viewers = new Map(); // canvas → viewer
  const visible = 'IntersectionObserver' in window ? new IntersectionObserver((entries) => {
    for (const e of entries) {
      if (!e.isIntersecting || viewers.has(e.target)) continue;
      const c = e.target;
      viewers.set(c, window.KilnViewer
        ? window.KilnViewer.create(c, c.dataset.src, (msg) => { c.nextSibling.textContent = msg; })
        : null);
    }
  }) : null;

  function materialCard(m) {
    const card = cardShell('material', m);
    const view = el('div', {class: 'view'});
    const model = m.gltf || m.glb;
    let dispose = () => {};
    if (model) {
      const canvas = el('canvas', {class: 'gl', 'data-src': outURL(model), 'data-state': 'waiting', title: 'Drag to orbit, scroll to zoom, double-click to reset'});
      view.append(canvas, el('div', {class: 'note', text: 'loading…'}));
      const overlay = el('div', {class: 'overlay'});
      const spin = el('button', {type: 'button', text: 'rotate', title: 'Turn the model slowly'});
      spin.addEventListener('click', () => { const v = viewers.get(canvas); if (v) spin.textContent = v.toggleSpin() ? 'stop' : 'rotate'; });
      overlay.append(spin);
      view.append(overlay);
      if (visible) visible.observe(canvas);
      else viewers.set(canvas, window.KilnViewer && window.KilnViewer.create(canvas, canvas.dataset.src, (msg) => { canvas.nextSibling.textContent = msg; }));
      dispose = () => {
        if (visible) visible.unobserve(canvas);
        const v = viewers.get(canvas);
        if (v) v.dispose();
        viewers.delete(canvas);
      };
    } else {
      view.append(el('div', {class: 'none', text: m.status === 'failed' ? 'no glTF: the build failed' : 'no glTF yet'}));
    }
    card.append(view);
    const tex = m.textures || [];
    if (tex.length) {
      card.append(el('div', {class: 'thumbs'}, tex.map((f) =>
        el('a', {class: 't', href: outURL(f), target: '_blank', rel: 'noopener', title: f.label || f.path},
          el('img', {src: outURL(f), alt: ''}), el('span', {text: f.label || ''})))));
    }
    const files = [m.gltf, m.glb].filter(Boolean).map((f) => ({...f, label: f.path.split('/').pop()}));
    card.append(el('div', {class: 'body'},
      errorsBlock(stageErrors(m)),
      el('div', {class: 'meta'}, el('span', {class: 'kind', text: 'material'}), m.preview ? el('span', {text: `preview: ${m.preview}`}) : null, m.where ? el('span', {text: m.where}) : null),
      filesBlock(files),
      stagesBlock(m.stages)));
    return [card, dispose];
  }

  // ---- Rendering with keyed reconciliation: a card is rebuilt only when
  // its entry changed, so animations and 3D views of unchanged entries
  // keep running across updates. ----
  const cards = new Map(); // key → {sig, card, dispose}
  let state = null;
  let lastSeq = 0;

  function reconcile(container, kind, entries, make) {
    const keep = new Set();
    let prev = null;
    for (const entry of entries) {
      const key = kind + '\u0000' + entry.id;
      keep.add(key);
      const sig = JSON.stringify(entry);
      let c = cards.get(key);
      if (!c || c.sig !== sig) {
        const [card, dispose] = make(entry);
        if (c) {
          c.dispose();
          c.card.replaceWith(card);
          if (lastSeq > 0) flash(card);
        }
        c = {sig, card, dispose};
        cards.set(key, c);
      }
      const want = prev ? prev.nextSibling : container.firstChild;
      if (c.card !== want) container.insertBefore(c.card, want);
      prev = c.card;
    }
    for (const [key, c] of cards) {
      if (key.startsWith(kind + '\u0000') && !keep.has(key)) {
        c.dispose();
        c.card.remove();
        cards.delete(key);
      }
    }
  }

  function flash(card) {
    card.classList.add('fresh');
    setTimeout(() => card.classList.remove('fresh'), 1500);
  }

  function setFavicon(color) {
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect x="1" y="1" width="14" height="14" rx="4" fill="${color}"/></svg>`;
    $('favicon').href = 'data:image/svg+xml,' + encodeURIComponent(svg);
  }

  function render(st) {
    state = st;
    document.body.dataset.seq = String(st.seq);
    $('project').textContent = st.project ? '· ' + st.project : '';
    document.title = (st.ok ? '' : '✗ ') + 'kiln preview' + (st.project ? ' · ' + st.project : '');
    const t = st.time ? new Date(st.time) : null;
    const when = t && !isNaN(t) && t.getFullYear() > 1 ? t.toLocaleTimeString([], {hour12: false}) : '';
    const changed = (st.changed || []).length ? ` · ${st.changed.slice(0, 3).join(', ')}${st.changed.length > 3 ? ` and ${st.changed.length - 3} more` : ''} changed` : '';
    $('summary').textContent = [when, st.summary].filter(Boolean).join(' · ') + changed;
    $('summary').title = $('summary').textContent;
    setBuild(st.ok ? 'ok' : 'failed', st.ok ? 'up to date' : 'build failed');
    const errs = st.errors || [];
    $('project-errors').hidden = errs.length === 0;
    $('project-errors-text').textContent = errs.join('\n');

    reconcile($('assets'), 'asset', st.assets || [], assetCard);
    reconcile($('atlases'), 'atlas', st.atlases || [], atlasCard);
    reconcile($('materials'), 'material', st.materials || [], materialCard);
    lastSeq = st.seq;
    applyFilter();
  }

  function setBuild(s, text) {
    $('build').dataset.state = s;
    $('pill').textContent = text;
    setFavicon({ok: '#4cc38a', failed: '#ef5a5a', building: '#f0b43c'}[s] || '#8a919e');
  }

  function applyFilter() {
    const q = $('filter').value.trim().toLowerCase();
    const problems = $('problems').checked;
    let shownTotal = 0;
    for (const [section, grid, count] of [['assets-section', 'assets', 'assets-count'], ['atlases-section', 'atlases', 'atlases-count'], ['materials-section', 'materials', 'materials-count']]) {
      let shown = 0, total = 0, failed = 0;
      for (const card of $(grid).children) {
        total++;
        const st = card.dataset.status;
        if (st === 'failed') failed++;
        const text = (card.dataset.id + ' ' + card.dataset.kind + ' ' + st).toLowerCase();
        const ok = (!q || text.includes(q)) && (!problems || st === 'failed' || st === 'skipped' || st === 'interrupted');
        card.classList.toggle('hidden', !ok);
        if (ok) shown++;
      }
      $(section).hidden = total === 0;
      $(count).textContent = (shown === total ? `${total}` : `${shown} of ${total}`) + (failed ? ` · ${failed} failed` : '');
      shownTotal += total;
    }
    $('empty').hidden = shownTotal > 0 || !state;
  }
  $('filter').addEventListener('input', applyFilter);
  $('problems').addEventListener('change', applyFilter);

  // ---- Live updates. EventSource reconnects by itself; the server sends
  // the current state on every (re)connection. ----
  function connect() {
    const es = new EventSource('/events');
    es.addEventListener('state', (e) => {
      try { render(JSON.parse(e.data)); } catch (err) { console.error('kiln preview: bad state', err); }
    });
    es.addEventListener('status', (e) => {
      let s;
      try { s = JSON.parse(e.data); } catch (err) { return; }
      if (s.building) {
        const c = s.changed || [];
        setBuild('building', 'building…');
        $('summary').textContent = c.length ? `${c.slice(0, 3).join(', ')}${c.length > 3 ? ` and ${c.length - 3} more` : ''} changed` : 'building the project';
      } else if (state) {
        setBuild(state.ok ? 'ok' : 'failed', state.ok ? 'up to date' : 'build failed');
      }
    });
    es.addEventListener('open', () => { document.body.dataset.live = 'yes'; });
    es.addEventListener('error', () => {
      document.body.dataset.live = 'no';
      setBuild('offline', 'reconnecting…');
    });
  }
  setFavicon('#8a919e');
  connect();
})();
