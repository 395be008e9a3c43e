// Runs in headless Chromium, served by browser_test.go: loads each atlas
// case the way the README's engine recipes do, in PixiJS 8 (Assets.load of
// the first JSON hash file, which brings the other pages through
// meta.related_multi_packs) and Phaser 3 (load.multiatlas, or load.atlas
// for a one-page JSON hash), and posts what the engines built to /result.
//
// The page is /engines/browser.html?cases=a,b,c; case c's files are under
// /atlas/c/ with base name given by ?base (default "sheet").

const params = new URLSearchParams(location.search);
const cases = params.get('cases').split(',');
const base = (c) => params.get('base_' + c) ?? 'sheet';


// pixi loads one case as the PixiJS recipe does.
async function pixi(dir, name) {
  PIXI.Assets.reset();
  const sheet = await PIXI.Assets.load(`${dir}/${name}.json`);
  const sheets = [sheet, ...sheet.linkedSheets];
  const pageOf = (tex) => {
    const s = sheets.find((s) => s.textureSource === tex.source);
    return s ? s.data.meta.image : null;
  };
  const animations = {};
  for (const [anim, frames] of Object.entries(sheet.data.meta.animations ?? {})) {
    // The recipe: every animation's frame names, looked up in the cache
    // that Assets.load filled from every page.
    const textures = frames.map((f) => PIXI.Texture.from(f));
    animations[anim] = textures.map((t) => ({ name: t.label, page: pageOf(t) }));
  }
  const textures = {};
  for (const s of sheets) {
    for (const [n, t] of Object.entries(s.textures)) {
      // The recipe's Sprite.from(name) must find the same texture.
      if (PIXI.Sprite.from(n).texture !== t) throw new Error(`Sprite.from(${n}) is not the sheet's texture`);
      textures[n] = {
        page: pageOf(t), orig: [t.orig.width, t.orig.height],
        anchor: t.defaultAnchor ? [t.defaultAnchor.x, t.defaultAnchor.y] : null,
        borders: t.defaultBorders ? [t.defaultBorders.left, t.defaultBorders.top, t.defaultBorders.right, t.defaultBorders.bottom] : null,
      };
    }
  }
  return { resolution: sheet.resolution, pages: sheets.length, animations, textures };
}

// phaser loads one case as the Phaser recipe does.
function phaser(dir, name, multi) {
  return new Promise((resolve, reject) => {
    const game = new Phaser.Game({
      type: Phaser.HEADLESS, width: 64, height: 64, banner: false, audio: { noAudio: true },
      scene: {
        preload() {
          this.load.on('loaderror', (f) => reject(new Error('Phaser could not load ' + f.src)));
          if (multi) {
            this.load.multiatlas('k', `${dir}/${name}.multiatlas.json`, `${dir}/`);
          } else {
            this.load.atlas('k', `${dir}/${name}.png`, `${dir}/${name}.json`);
          }
        },
        create() {
          const tex = this.textures.get('k');
          // The recipe: customData.animations names every animation's frames.
          const anims = tex.customData.animations ?? {};
          const animations = {};
          for (const [key, frames] of Object.entries(anims)) {
            const anim = this.anims.create({ key, frameRate: 10, frames: frames.map((frame) => ({ key: 'k', frame })) });
            animations[key] = anim.frames.map((f) => ({
              // Phaser loads images as blobs: name the page by its
              // place in the file, which browser_test.go maps to a name.
              name: f.textureFrame, page: String(f.frame.sourceIndex),
            }));
          }
          const frames = {};
          for (const n of tex.getFrameNames()) {
            const f = tex.get(n);
            frames[n] = {
              page: String(f.sourceIndex),
              pivot: f.customPivot ? [f.pivotX, f.pivotY] : null,
              scale9: f.scale9 ? [f.data.scale9Borders.x, f.data.scale9Borders.y, f.data.scale9Borders.w, f.data.scale9Borders.h] : null,
            };
          }
          resolve({ pages: tex.source.length, animations, frames });
          game.destroy(true);
        },
      },
    });
  });
}

const out = {};
try {
  for (const c of cases) {
    const dir = `/atlas/${c}`;
    const name = base(c);
    const multi = params.get('multi_' + c) === '1';
    out[c] = { pixi: await pixi(dir, name), phaser: await phaser(dir, name, multi) };
  }
} catch (e) {
  out.error = String(e && e.stack || e);
}
await fetch('/result', { method: 'POST', body: JSON.stringify(out) });
