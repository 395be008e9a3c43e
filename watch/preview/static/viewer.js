// A small glTF 2.0 viewer written for kiln's preview page: it reads a
// .gltf (with its .bin and PNG textures) or a .glb, and draws the first
// mesh with its metallic-roughness material (base colour, normal map,
// metallic-roughness, occlusion, emissive, texture transforms) under a
// key, fill and rim light plus a sky/ground ambient, with WebGL 2.
// Drag to orbit, scroll to zoom, double-click to reset.
'use strict';

window.KilnViewer = (() => {
  // ---- glTF reading ----
  const COMPONENTS = {SCALAR: 1, VEC2: 2, VEC3: 3, VEC4: 4, MAT2: 4, MAT3: 9, MAT4: 16};
  const ARRAYS = {5120: Int8Array, 5121: Uint8Array, 5122: Int16Array, 5123: Uint16Array, 5125: Uint32Array, 5126: Float32Array};
  const NORM = {5120: 127, 5121: 255, 5122: 32767, 5123: 65535};
  const GLB_MAGIC = 0x46546c67, CHUNK_JSON = 0x4e4f534a, CHUNK_BIN = 0x004e4942;

  async function fetchBytes(url) {
    if (url.startsWith('data:')) return decodeDataURI(url);
    const res = await fetch(url, {cache: 'no-cache'});
    if (!res.ok) throw new Error(`${decodeURIComponent(new URL(url).pathname)}: HTTP ${res.status}`);
    return res.arrayBuffer();
  }

  function decodeDataURI(uri) {
    const comma = uri.indexOf(',');
    if (comma < 0 || !/;base64$/i.test(uri.slice(0, comma))) throw new Error('unsupported data URI in glTF');
    const bin = atob(uri.slice(comma + 1));
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }

  // load returns the parsed document: its JSON, its buffers, and a
  // function that turns an image index into an ImageBitmap.
  async function load(url) {
    const bytes = await fetchBytes(url);
    const view = new DataView(bytes);
    let json, bin = null;
    if (bytes.byteLength >= 12 && view.getUint32(0, true) === GLB_MAGIC) {
      for (let off = 12; off + 8 <= bytes.byteLength;) {
        const len = view.getUint32(off, true), type = view.getUint32(off + 4, true);
        const data = bytes.slice(off + 8, off + 8 + len);
        if (type === CHUNK_JSON) json = JSON.parse(new TextDecoder().decode(data));
        else if (type === CHUNK_BIN && !bin) bin = data;
        off += 8 + len + ((4 - len % 4) % 4);
      }
      if (!json) throw new Error('the .glb has no JSON chunk');
    } else {
      json = JSON.parse(new TextDecoder().decode(bytes));
    }
    if (!json.asset || !String(json.asset.version || '').startsWith('2')) throw new Error('not a glTF 2.0 file');
    const base = new URL(url, location.href);
    const buffers = await Promise.all((json.buffers || []).map((b) => {
      if (b.uri === undefined) {
        if (!bin) throw new Error('a buffer without uri outside a .glb');
        return bin;
      }
      return fetchBytes(new URL(b.uri, base).href);
    }));
    const images = new Map();
    const image = (i) => {
      if (!images.has(i)) {
        const im = json.images[i];
        let blob;
        if (im.uri !== undefined) {
          blob = fetchBytes(new URL(im.uri, base).href).then((b) => new Blob([b], {type: im.mimeType || 'image/png'}));
        } else {
          const bv = json.bufferViews[im.bufferView];
          const start = bv.byteOffset || 0;
          blob = Promise.resolve(new Blob([buffers[bv.buffer].slice(start, start + bv.byteLength)], {type: im.mimeType || 'image/png'}));
        }
        images.set(i, blob.then((b) => createImageBitmap(b, {premultiplyAlpha: 'none', colorSpaceConversion: 'none', imageOrientation: 'none'})));
      }
      return images.get(i);
    };
    return {json, buffers, image};
  }

  // accessor returns the accessor's elements as a typed array (floats
  // for normalized integers), de-interleaving strided views.
  function accessor(doc, index, asFloat) {
    const acc = doc.json.accessors[index];
    const n = COMPONENTS[acc.type];
    const Arr = ARRAYS[acc.componentType];
    if (!n || !Arr) throw new Error(`accessor ${index}: unsupported type`);
    const count = acc.count * n;
    let out;
    if (acc.bufferView === undefined) {
      out = new Arr(count); // all zeros (sparse accessors are not used by kiln)
    } else {
      const bv = doc.json.bufferViews[acc.bufferView];
      const buf = doc.buffers[bv.buffer];
      const start = (bv.byteOffset || 0) + (acc.byteOffset || 0);
      const elem = Arr.BYTES_PER_ELEMENT * n;
      const stride = bv.byteStride || elem;
      if (stride === elem) {
        out = new Arr(buf.slice(start, start + count * Arr.BYTES_PER_ELEMENT));
      } else {
        out = new Arr(count);
        const src = new Uint8Array(buf);
        const dst = new Uint8Array(out.buffer);
        for (let i = 0; i < acc.count; i++) dst.set(src.subarray(start + i * stride, start + i * stride + elem), i * elem);
      }
    }
    if (asFloat && !(out instanceof Float32Array)) {
      const f = new Float32Array(out.length);
      const d = acc.normalized ? NORM[acc.componentType] : 1;
      for (let i = 0; i < out.length; i++) f[i] = Math.max(out[i] / d, -1);
      out = f;
    }
    return {data: out, n, acc};
  }

  // ---- small matrix helpers (column-major, like WebGL) ----
  const M = {
    ident: () => new Float32Array([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]),
    mul(a, b) {
      const o = new Float32Array(16);
      for (let c = 0; c < 4; c++) for (let r = 0; r < 4; r++) {
        let s = 0;
        for (let k = 0; k < 4; k++) s += a[k * 4 + r] * b[c * 4 + k];
        o[c * 4 + r] = s;
      }
      return o;
    },
    perspective(fovy, aspect, near, far) {
      const f = 1 / Math.tan(fovy / 2), nf = 1 / (near - far);
      return new Float32Array([f / aspect, 0, 0, 0, 0, f, 0, 0, 0, 0, (far + near) * nf, -1, 0, 0, 2 * far * near * nf, 0]);
    },
    lookAt(eye, at, up) {
      let z = norm(sub(eye, at)), x = norm(cross(up, z)), y = cross(z, x);
      return new Float32Array([x[0], y[0], z[0], 0, x[1], y[1], z[1], 0, x[2], y[2], z[2], 0,
        -dot(x, eye), -dot(y, eye), -dot(z, eye), 1]);
    },
    trs(t, q, s) {
      const [x, y, z, w] = q;
      const xx = x * x, yy = y * y, zz = z * z, xy = x * y, xz = x * z, yz = y * z, wx = w * x, wy = w * y, wz = w * z;
      return new Float32Array([
        (1 - 2 * (yy + zz)) * s[0], 2 * (xy + wz) * s[0], 2 * (xz - wy) * s[0], 0,
        2 * (xy - wz) * s[1], (1 - 2 * (xx + zz)) * s[1], 2 * (yz + wx) * s[1], 0,
        2 * (xz + wy) * s[2], 2 * (yz - wx) * s[2], (1 - 2 * (xx + yy)) * s[2], 0,
        t[0], t[1], t[2], 1]);
    },
    apply(m, p) {
      return [m[0] * p[0] + m[4] * p[1] + m[8] * p[2] + m[12], m[1] * p[0] + m[5] * p[1] + m[9] * p[2] + m[13], m[2] * p[0] + m[6] * p[1] + m[10] * p[2] + m[14]];
    },
  };
  const sub = (a, b) => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
  const dot = (a, b) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
  const cross = (a, b) => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
  const norm = (a) => { const l = Math.hypot(a[0], a[1], a[2]) || 1; return [a[0] / l, a[1] / l, a[2] / l]; };

  // uvTransform is the 3×3 matrix of KHR_texture_transform (column-major).
  function uvTransform(info) {
    const t = info && info.extensions && info.extensions.KHR_texture_transform;
    if (!t) return new Float32Array([1, 0, 0, 0, 1, 0, 0, 0, 1]);
    const [ox, oy] = t.offset || [0, 0], [sx, sy] = t.scale || [1, 1], r = t.rotation || 0;
    const c = Math.cos(r), s = Math.sin(r);
    return new Float32Array([c * sx, -s * sx, 0, s * sy, c * sy, 0, ox, oy, 1]);
  }

  // ---- shaders ----
  const VS = `#version 300 es
layout(location=0) in vec3 aPos;
layout(location=1) in vec3 aNormal;
layout(location=2) in vec2 aUV;
layout(location=3) in vec4 aTangent;
uniform mat4 uViewProj, uModel;
out vec3 vPos; out vec3 vNormal; out vec2 vUV; out vec4 vTangent;
void main() {
  vec4 wp = uModel * vec4(aPos, 1.0);
  vPos = wp.xyz;
  mat3 m = mat3(uModel);
  vNormal = m * aNormal;
  vTangent = vec4(m * aTangent.xyz, aTangent.w);
  vUV = aUV;
  gl_Position = uViewProj * wp;
}`;

  const FS = `#version 300 es
precision highp float;
in vec3 vPos; in vec3 vNormal; in vec2 vUV; in vec4 vTangent;
uniform sampler2D uBase, uMR, uNormalMap, uOcc, uEmissive;
uniform mat3 uBaseXf, uMRXf, uNormalXf, uOccXf, uEmissiveXf;
uniform vec4 uBaseFactor;
uniform float uMetallic, uRoughness, uNormalScale, uOccStrength, uCutoff;
uniform vec3 uEmissiveFactor, uCamera;
uniform int uAlphaMode;
out vec4 outColor;
const float PI = 3.14159265;

vec2 xf(mat3 m) { return (m * vec3(vUV, 1.0)).xy; }

// The normal from the normal map, in world space: with the mesh's
// tangents when it has them (w = ±1), else from screen-space derivatives.
vec3 shadingNormal(vec3 n) {
  vec2 uv = xf(uNormalXf);
  vec3 t, b;
  if (vTangent.w != 0.0) {
    t = normalize(vTangent.xyz - n * dot(n, vTangent.xyz));
    b = cross(n, t) * vTangent.w;
  } else {
    vec3 dp1 = dFdx(vPos), dp2 = dFdy(vPos);
    vec2 duv1 = dFdx(uv), duv2 = dFdy(uv);
    vec3 p2 = cross(dp2, n), p1 = cross(n, dp1);
    t = p2 * duv1.x + p1 * duv2.x;
    b = p2 * duv1.y + p1 * duv2.y;
    float s = inversesqrt(max(max(dot(t, t), dot(b, b)), 1e-12));
    t *= s; b *= s;
  }
  vec3 tn = texture(uNormalMap, uv).xyz * 2.0 - 1.0;
  tn.xy *= uNormalScale;
  return normalize(mat3(t, b, n) * tn);
}

vec3 light(vec3 n, vec3 v, vec3 l, vec3 radiance, vec3 albedo, float metal, float rough, vec3 f0) {
  vec3 h = normalize(v + l);
  float nl = max(dot(n, l), 0.0), nv = max(dot(n, v), 1e-4), nh = max(dot(n, h), 0.0), vh = max(dot(v, h), 0.0);
  float a = rough * rough, a2 = a * a;
  float d = a2 / (PI * pow(nh * nh * (a2 - 1.0) + 1.0, 2.0));
  float k = (rough + 1.0) * (rough + 1.0) / 8.0;
  float g = (nl / (nl * (1.0 - k) + k)) * (nv / (nv * (1.0 - k) + k));
  vec3 f = f0 + (1.0 - f0) * pow(1.0 - vh, 5.0);
  vec3 spec = d * g * f / max(4.0 * nl * nv, 1e-4);
  vec3 diff = (1.0 - f) * (1.0 - metal) * albedo / PI;
  return (diff + spec) * radiance * nl;
}

void main() {
  vec4 base = texture(uBase, xf(uBaseXf)) * uBaseFactor;
  if (uAlphaMode == 1 && base.a < uCutoff) discard;
  vec3 mr = texture(uMR, xf(uMRXf)).rgb;
  float rough = clamp(mr.g * uRoughness, 0.045, 1.0);
  float metal = clamp(mr.b * uMetallic, 0.0, 1.0);
  vec3 n = normalize(vNormal);
  if (!gl_FrontFacing) n = -n;
  n = shadingNormal(n);
  float ao = mix(1.0, texture(uOcc, xf(uOccXf)).r, uOccStrength);
  vec3 v = normalize(uCamera - vPos);
  vec3 f0 = mix(vec3(0.04), base.rgb, metal);
  vec3 c = vec3(0.0);
  c += light(n, v, normalize(vec3(0.6, 0.8, 0.55)), vec3(3.2, 3.05, 2.85), base.rgb, metal, rough, f0);
  c += light(n, v, normalize(vec3(-0.7, 0.25, 0.4)), vec3(0.55, 0.62, 0.8), base.rgb, metal, rough, f0);
  c += light(n, v, normalize(vec3(-0.2, 0.4, -0.9)), vec3(0.9, 0.85, 0.8), base.rgb, metal, rough, f0);
  // Sky and ground ambient, and a rough stand-in for reflections.
  vec3 sky = vec3(0.36, 0.4, 0.48), ground = vec3(0.16, 0.14, 0.12);
  vec3 amb = mix(ground, sky, n.y * 0.5 + 0.5);
  vec3 fr = f0 + (max(vec3(1.0 - rough), f0) - f0) * pow(1.0 - max(dot(n, v), 0.0), 5.0);
  vec3 refl = mix(ground, sky * 1.3, reflect(-v, n).y * 0.5 + 0.5);
  c += (amb * base.rgb * (1.0 - metal) + refl * fr * (1.0 - rough * 0.7)) * ao;
  c += texture(uEmissive, xf(uEmissiveXf)).rgb * uEmissiveFactor;
  // ACES-like tone curve, then sRGB.
  c = clamp((c * (2.51 * c + 0.03)) / (c * (2.43 * c + 0.59) + 0.14), 0.0, 1.0);
  c = pow(c, vec3(1.0 / 2.2));
  outColor = vec4(c, uAlphaMode == 2 ? base.a : 1.0);
}`;

  function compile(gl, type, src) {
    const s = gl.createShader(type);
    gl.shaderSource(s, src);
    gl.compileShader(s);
    if (!gl.getShaderParameter(s, gl.COMPILE_STATUS)) throw new Error('shader: ' + gl.getShaderInfoLog(s));
    return s;
  }

  function program(gl) {
    const p = gl.createProgram();
    gl.attachShader(p, compile(gl, gl.VERTEX_SHADER, VS));
    gl.attachShader(p, compile(gl, gl.FRAGMENT_SHADER, FS));
    gl.linkProgram(p);
    if (!gl.getProgramParameter(p, gl.LINK_STATUS)) throw new Error('shader link: ' + gl.getProgramInfoLog(p));
    const u = {};
    const n = gl.getProgramParameter(p, gl.ACTIVE_UNIFORMS);
    for (let i = 0; i < n; i++) {
      const name = gl.getActiveUniform(p, i).name;
      u[name] = gl.getUniformLocation(p, name);
    }
    return {p, u};
  }

  // ---- the viewer ----

  // create starts a viewer on canvas for the glTF or GLB at url. status
  // receives short messages for the user. It returns {dispose, toggleSpin}.
  // canvas.dataset.state says how far it got: loading, parsed, ready,
  // no-webgl or error (tests read it).
  function create(canvas, url, status) {
    const say = (s, msg) => { canvas.dataset.state = s; if (status) status(msg || ''); };
    say('loading', 'loading…');
    let disposed = false, gl = null, frame = 0, spin = false, lastT = 0;
    let yaw = 0.6, pitch = 0.35, dist = 3, target = [0, 0, 0], radius = 1;
    const home = {};
    const res = [];
    let draws = [], prog = null;

    const render = () => {
      frame = 0;
      if (disposed || !gl || !prog) return;
      const now = performance.now();
      if (spin) {
        yaw += (lastT ? now - lastT : 16) * 0.0004;
        lastT = now;
        frame = requestAnimationFrame(render);
      }
      const dpr = Math.min(window.devicePixelRatio || 1, 2);
      const w = Math.max(1, Math.round(canvas.clientWidth * dpr)), h = Math.max(1, Math.round(canvas.clientHeight * dpr));
      if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
      gl.viewport(0, 0, w, h);
      gl.clearColor(0, 0, 0, 0);
      gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
      const eye = [target[0] + dist * Math.cos(pitch) * Math.sin(yaw), target[1] + dist * Math.sin(pitch), target[2] + dist * Math.cos(pitch) * Math.cos(yaw)];
      const vp = M.mul(M.perspective(0.7, w / h, dist / 100, dist * 10 + radius * 4), M.lookAt(eye, target, [0, 1, 0]));
      gl.useProgram(prog.p);
      gl.uniformMatrix4fv(prog.u.uViewProj, false, vp);
      gl.uniform3fv(prog.u.uCamera, eye);
      for (const d of draws) d(gl);
      const frames = (+canvas.dataset.frames || 0) + 1;
      canvas.dataset.frames = String(frames);
      if (frames === 1) {
        const e = gl.getError();
        if (e !== gl.NO_ERROR) canvas.dataset.glError = '0x' + e.toString(16);
      }
    };
    const request = () => { if (!frame && !disposed) frame = requestAnimationFrame(render); };

    (async () => {
      const doc = await load(url);
      if (disposed) return;
      const json = doc.json;
      // The first node with a mesh in the default scene (or anywhere).
      const scene = json.scenes && json.scenes[json.scene || 0];
      let node = null, world = M.ident();
      const visit = (i, parent) => {
        const nd = json.nodes[i];
        const local = nd.matrix ? new Float32Array(nd.matrix) : M.trs(nd.translation || [0, 0, 0], nd.rotation || [0, 0, 0, 1], nd.scale || [1, 1, 1]);
        const m = M.mul(parent, local);
        if (nd.mesh !== undefined && !node) { node = nd; world = m; }
        for (const c of nd.children || []) visit(c, m);
      };
      for (const i of (scene && scene.nodes) || (json.nodes || []).map((_, i) => i)) visit(i, M.ident());
      const meshIndex = node ? node.mesh : 0;
      const mesh = json.meshes && json.meshes[meshIndex];
      if (!mesh) throw new Error('the file has no mesh');
      const prims = mesh.primitives.filter((p) => p.mode === undefined || p.mode === 4).map((p) => {
        const pos = accessor(doc, p.attributes.POSITION, true);
        return {
          p, pos,
          normal: p.attributes.NORMAL !== undefined ? accessor(doc, p.attributes.NORMAL, true) : null,
          uv: p.attributes.TEXCOORD_0 !== undefined ? accessor(doc, p.attributes.TEXCOORD_0, true) : null,
          tangent: p.attributes.TANGENT !== undefined ? accessor(doc, p.attributes.TANGENT, true) : null,
          index: p.indices !== undefined ? accessor(doc, p.indices, false) : null,
        };
      });
      if (!prims.length) throw new Error('the mesh has no triangles');
      // Frame the mesh from its bounds.
      let lo = [Infinity, Infinity, Infinity], hi = [-Infinity, -Infinity, -Infinity];
      for (const pr of prims) {
        const d = pr.pos.data;
        for (let i = 0; i < d.length; i += 3) {
          const q = M.apply(world, [d[i], d[i + 1], d[i + 2]]);
          for (let k = 0; k < 3; k++) { lo[k] = Math.min(lo[k], q[k]); hi[k] = Math.max(hi[k], q[k]); }
        }
      }
      target = [(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, (lo[2] + hi[2]) / 2];
      // The bounding sphere about the box centre: a sphere mesh fits
      // its own radius, a cube its corners.
      radius = 1e-3;
      for (const pr of prims) {
        const d = pr.pos.data;
        for (let i = 0; i < d.length; i += 3) {
          const q = M.apply(world, [d[i], d[i + 1], d[i + 2]]);
          radius = Math.max(radius, Math.hypot(q[0] - target[0], q[1] - target[1], q[2] - target[2]));
        }
      }
      const flat = hi[1] - lo[1] < radius * 0.05; // a plane: look at it from above
      if (flat) { yaw = 0; pitch = 0.95; }
      dist = radius / Math.sin(0.35) * 1.18;
      Object.assign(home, {yaw, pitch, dist});
      const vertices = prims.reduce((s, pr) => s + pr.pos.acc.count, 0);
      canvas.dataset.vertices = String(vertices);
      say('parsed', '');

      gl = canvas.getContext('webgl2', {antialias: true, premultipliedAlpha: true, alpha: true});
      if (!gl) { say('no-webgl', 'WebGL 2 is not available in this browser; open the textures below instead'); return; }
      prog = program(gl);
      const aniso = gl.getExtension('EXT_texture_filter_anisotropic');

      // Textures, shared between slots that use the same image.
      const textures = new Map();
      const solid = (rgba) => {
        const t = gl.createTexture();
        gl.bindTexture(gl.TEXTURE_2D, t);
        gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGBA8, 1, 1, 0, gl.RGBA, gl.UNSIGNED_BYTE, new Uint8Array(rgba));
        res.push(() => gl.deleteTexture(t));
        return t;
      };
      const white = solid([255, 255, 255, 255]), flatNormal = solid([128, 128, 255, 255]), black = solid([0, 0, 0, 255]);
      const texture = async (info, srgb, fallback) => {
        if (!info || json.textures === undefined) return fallback;
        const tex = json.textures[info.index];
        if (!tex || tex.source === undefined) return fallback;
        const key = tex.source + (srgb ? ':srgb' : '') + ':' + (tex.sampler ?? '');
        if (!textures.has(key)) {
          textures.set(key, doc.image(tex.source).then((bmp) => {
            if (disposed) return fallback;
            const smp = (json.samplers && json.samplers[tex.sampler]) || {};
            const t = gl.createTexture();
            gl.bindTexture(gl.TEXTURE_2D, t);
            gl.pixelStorei(gl.UNPACK_COLORSPACE_CONVERSION_WEBGL, gl.NONE);
            gl.texImage2D(gl.TEXTURE_2D, 0, srgb ? gl.SRGB8_ALPHA8 : gl.RGBA8, gl.RGBA, gl.UNSIGNED_BYTE, bmp);
            gl.generateMipmap(gl.TEXTURE_2D);
            gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_S, smp.wrapS || gl.REPEAT);
            gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_T, smp.wrapT || gl.REPEAT);
            gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER, smp.magFilter || gl.LINEAR);
            gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, smp.minFilter || gl.LINEAR_MIPMAP_LINEAR);
            if (aniso) gl.texParameterf(gl.TEXTURE_2D, aniso.TEXTURE_MAX_ANISOTROPY_EXT, Math.min(8, gl.getParameter(aniso.MAX_TEXTURE_MAX_ANISOTROPY_EXT)));
            bmp.close();
            res.push(() => gl.deleteTexture(t));
            return t;
          }).catch((err) => { console.warn('kiln viewer: texture', err); canvas.dataset.textureError = err.message; return fallback; }));
        }
        return textures.get(key);
      };

      const buffer = (target, data) => {
        const b = gl.createBuffer();
        gl.bindBuffer(target, b);
        gl.bufferData(target, data, gl.STATIC_DRAW);
        res.push(() => gl.deleteBuffer(b));
        return b;
      };

      draws = await Promise.all(prims.map(async (pr) => {
        const mat = (json.materials && json.materials[pr.p.material]) || {};
        const pbr = mat.pbrMetallicRoughness || {};
        const vao = gl.createVertexArray();
        res.push(() => gl.deleteVertexArray(vao));
        gl.bindVertexArray(vao);
        const attr = (loc, a, n, dflt) => {
          if (a) {
            buffer(gl.ARRAY_BUFFER, a.data);
            gl.enableVertexAttribArray(loc);
            gl.vertexAttribPointer(loc, n, gl.FLOAT, false, 0, 0);
          } else {
            gl.disableVertexAttribArray(loc);
            gl.vertexAttrib4f(loc, ...dflt);
          }
        };
        attr(0, pr.pos, 3);
        attr(1, pr.normal, 3, [0, 1, 0, 0]);
        attr(2, pr.uv, 2, [0, 0, 0, 0]);
        attr(3, pr.tangent, 4, [0, 0, 0, 0]);
        let count = pr.pos.acc.count, type = null;
        if (pr.index) {
          const d = pr.index.data;
          buffer(gl.ELEMENT_ARRAY_BUFFER, d);
          count = d.length;
          type = d instanceof Uint32Array ? gl.UNSIGNED_INT : d instanceof Uint16Array ? gl.UNSIGNED_SHORT : gl.UNSIGNED_BYTE;
        }
        gl.bindVertexArray(null);
        const [tBase, tMR, tNormal, tOcc, tEm] = await Promise.all([
          texture(pbr.baseColorTexture, true, white),
          texture(pbr.metallicRoughnessTexture, false, white),
          texture(mat.normalTexture, false, flatNormal),
          texture(mat.occlusionTexture, false, white),
          texture(mat.emissiveTexture, true, mat.emissiveFactor ? white : black),
        ]);
        const emStrength = (mat.extensions && mat.extensions.KHR_materials_emissive_strength && mat.extensions.KHR_materials_emissive_strength.emissiveStrength) || 1;
        const em = (mat.emissiveFactor || [0, 0, 0]).map((x) => x * emStrength);
        const alphaMode = {OPAQUE: 0, MASK: 1, BLEND: 2}[mat.alphaMode || 'OPAQUE'] || 0;
        const xfs = [pbr.baseColorTexture, pbr.metallicRoughnessTexture, mat.normalTexture, mat.occlusionTexture, mat.emissiveTexture].map(uvTransform);
        return (gl) => {
          const u = prog.u;
          gl.uniformMatrix4fv(u.uModel, false, world);
          [[tBase, 'uBase'], [tMR, 'uMR'], [tNormal, 'uNormalMap'], [tOcc, 'uOcc'], [tEm, 'uEmissive']].forEach(([t, name], i) => {
            gl.activeTexture(gl.TEXTURE0 + i);
            gl.bindTexture(gl.TEXTURE_2D, t);
            gl.uniform1i(u[name], i);
          });
          gl.uniformMatrix3fv(u.uBaseXf, false, xfs[0]);
          gl.uniformMatrix3fv(u.uMRXf, false, xfs[1]);
          gl.uniformMatrix3fv(u.uNormalXf, false, xfs[2]);
          gl.uniformMatrix3fv(u.uOccXf, false, xfs[3]);
          gl.uniformMatrix3fv(u.uEmissiveXf, false, xfs[4]);
          gl.uniform4fv(u.uBaseFactor, pbr.baseColorFactor || [1, 1, 1, 1]);
          gl.uniform1f(u.uMetallic, pbr.metallicFactor ?? 1);
          gl.uniform1f(u.uRoughness, pbr.roughnessFactor ?? 1);
          gl.uniform1f(u.uNormalScale, (mat.normalTexture && mat.normalTexture.scale) ?? 1);
          gl.uniform1f(u.uOccStrength, (mat.occlusionTexture && mat.occlusionTexture.strength) ?? 1);
          gl.uniform3fv(u.uEmissiveFactor, em);
          gl.uniform1i(u.uAlphaMode, alphaMode);
          gl.uniform1f(u.uCutoff, mat.alphaCutoff ?? 0.5);
          gl.enable(gl.DEPTH_TEST);
          if (mat.doubleSided) gl.disable(gl.CULL_FACE); else { gl.enable(gl.CULL_FACE); gl.cullFace(gl.BACK); }
          if (alphaMode === 2) { gl.enable(gl.BLEND); gl.blendFunc(gl.SRC_ALPHA, gl.ONE_MINUS_SRC_ALPHA); } else gl.disable(gl.BLEND);
          gl.bindVertexArray(vao);
          if (type) gl.drawElements(gl.TRIANGLES, count, type, 0); else gl.drawArrays(gl.TRIANGLES, 0, count);
          gl.bindVertexArray(null);
        };
      }));
      if (disposed) return;
      say('ready', '');
      request();
    })().catch((err) => {
      console.error('kiln viewer:', err);
      say('error', 'cannot show ' + decodeURIComponent(new URL(url, location.href).pathname.split('/').pop()) + ': ' + err.message);
    });

    // Orbit with the mouse (or a finger), zoom with the wheel.
    let drag = null;
    const onDown = (e) => { drag = {x: e.clientX, y: e.clientY}; canvas.setPointerCapture(e.pointerId); spin = false; };
    const onMove = (e) => {
      if (!drag) return;
      yaw -= (e.clientX - drag.x) * 0.008;
      pitch = Math.max(-1.5, Math.min(1.5, pitch + (e.clientY - drag.y) * 0.008));
      drag = {x: e.clientX, y: e.clientY};
      request();
    };
    const onUp = () => { drag = null; };
    const onWheel = (e) => {
      e.preventDefault();
      dist = Math.max(radius * 1.05, Math.min(radius * 20, dist * Math.exp(e.deltaY * 0.0012)));
      request();
    };
    const onReset = () => { yaw = home.yaw; pitch = home.pitch; dist = home.dist; request(); };
    const onLost = (e) => { e.preventDefault(); say('error', 'the graphics context was lost; reload the page'); };
    canvas.addEventListener('pointerdown', onDown);
    canvas.addEventListener('pointermove', onMove);
    canvas.addEventListener('pointerup', onUp);
    canvas.addEventListener('pointercancel', onUp);
    canvas.addEventListener('wheel', onWheel, {passive: false});
    canvas.addEventListener('dblclick', onReset);
    canvas.addEventListener('webglcontextlost', onLost);
    const ro = 'ResizeObserver' in window ? new ResizeObserver(request) : null;
    if (ro) ro.observe(canvas);

    return {
      toggleSpin() { spin = !spin; lastT = 0; request(); return spin; },
      dispose() {
        disposed = true;
        if (frame) cancelAnimationFrame(frame);
        if (ro) ro.disconnect();
        canvas.removeEventListener('pointerdown', onDown);
        canvas.removeEventListener('pointermove', onMove);
        canvas.removeEventListener('pointerup', onUp);
        canvas.removeEventListener('pointercancel', onUp);
        canvas.removeEventListener('wheel', onWheel);
        canvas.removeEventListener('dblclick', onReset);
        canvas.removeEventListener('webglcontextlost', onLost);
        if (gl) {
          for (const f of res) f();
          if (prog) gl.deleteProgram(prog.p);
          const lose = gl.getExtension('WEBGL_lose_context');
          if (lose) lose.loseContext();
        }
      },
    };
  }

  return {create, load, accessor};
})();
