// Loads kiln atlas files with the engines' own parsers and prints what they
// read, as JSON, for engines_test.go to compare with the atlas.
//
// Usage: node check.mjs FILE...
//
// *.json files (TexturePacker JSON hash) go through PixiJS 8's Spritesheet;
// *.atlas files (libGDX / Spine) through the Spine runtime's TextureAtlas.

// PixiJS probes the browser when it loads; a user agent is all it needs
// to parse a spritesheet without a renderer.
globalThis.navigator ??= { userAgent: 'node' };
const { Spritesheet, Texture, TextureSource } = await import('pixi.js');
const { TextureAtlas, RegionAttachment } = await import('@esotericsoftware/spine-core');
const fs = await import('node:fs');

const rect = (r) => (r ? { x: r.x, y: r.y, w: r.width, h: r.height } : null);

async function pixi(file) {
  const data = JSON.parse(fs.readFileSync(file, 'utf8'));
  const source = new TextureSource({ width: data.meta.size.w, height: data.meta.size.h, resolution: 1 });
  const sheet = new Spritesheet(new Texture({ source }), data);
  await sheet.parse();
  const textures = {};
  for (const [name, t] of Object.entries(sheet.textures)) {
    textures[name] = {
      frame: rect(t.frame), orig: rect(t.orig), trim: rect(t.trim), rotate: t.rotate,
      anchor: t.defaultAnchor ? { x: t.defaultAnchor.x, y: t.defaultAnchor.y } : null,
      // Texture coordinates of the displayed top-left and top-right corners.
      topLeft: [t.uvs.x0, t.uvs.y0], topRight: [t.uvs.x1, t.uvs.y1],
    };
  }
  const animations = {};
  for (const [name, list] of Object.entries(sheet.animations)) {
    animations[name] = list.map((t) => t.label);
  }
  return { resolution: sheet.resolution, textures, animations };
}

// corners returns the texture coordinates the Spine runtime maps to a
// region attachment's upper-left and upper-right corners.
function corners(region) {
  const a = new RegionAttachment(region.name, region.name);
  a.region = region;
  a.width = region.originalWidth;
  a.height = region.originalHeight;
  a.updateRegion();
  // uvs hold bottom-left, upper-left, upper-right, bottom-right.
  return { topLeft: [a.uvs[2], a.uvs[3]], topRight: [a.uvs[4], a.uvs[5]] };
}

function spine(file) {
  const atlas = new TextureAtlas(fs.readFileSync(file, 'utf8'));
  return {
    pages: atlas.pages.map((p) => ({ name: p.name, w: p.width, h: p.height, pma: p.pma, minFilter: p.minFilter, magFilter: p.magFilter })),
    regions: atlas.regions.map((r) => ({
      page: r.page.name, name: r.name, index: r.index, x: r.x, y: r.y, w: r.width, h: r.height,
      degrees: r.degrees, offsetX: r.offsetX, offsetY: r.offsetY, originalWidth: r.originalWidth, originalHeight: r.originalHeight,
      // Fields the reader does not know, such as split: names and values.
      names: r.names ?? null, values: r.values ?? null,
      ...corners(r),
    })),
  };
}

const out = {};
for (const file of process.argv.slice(2)) {
  out[file] = file.endsWith('.atlas') ? { spine: spine(file) } : { pixi: await pixi(file) };
}
process.stdout.write(JSON.stringify(out) + '\n');
