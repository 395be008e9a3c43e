// Runs the peer packers (maxrects-packer and free-tex-packer-core) on the
// benchmark sets written by `go run ./exporters/atlas/bench` and prints one
// JSON result per packer configuration on stdout.
//
// Usage: node peers.cjs SETS.json [TIMEOUT_SECONDS]
//
// Every packer gets the same sizes, page limit and spacing: `padding`
// pixels between sprites and `border` pixels at the page edge
// (free-tex-packer-core's "padding p" means 2p between sprites and p at the
// edge, so it is given p = border = padding / 2). Rotation, trimming and
// duplicate detection are off. Occupancy is the summed sprite area divided
// by the summed page area. After at least 5 warm-up runs (and 200 ms),
// three blocks of at least 3 runs (and 100 ms) are timed: wall time (ms) is
// the median of the blocks' median run times, CPU time (cpuMs) the median
// of the blocks' process user+system time per run. A configuration whose
// first run is slower than a second is timed by that run alone.
//
// Each configuration runs in its own worker thread, which is stopped after
// TIMEOUT_SECONDS (default 120): free-tex-packer-core's global contact point
// packer is cubic in the number of sprites and does not finish on 1,500.
'use strict';

const fs = require('fs');
const { performance } = require('perf_hooks');
const { Worker, isMainThread, parentPort, workerData } = require('worker_threads');

function median(xs) {
  const s = xs.slice().sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function timeIt(fn) {
  // Warm up so the JIT has compiled the packer: at least 5 runs and 200 ms.
  let result;
  const warm = performance.now();
  for (let i = 0; i < 5 || performance.now() - warm < 200; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    result = fn();
    if (i === 0 && performance.now() - t0 > 1000) {
      const c = process.cpuUsage(c0);
      return { result, ms: performance.now() - t0, cpuMs: (c.user + c.system) / 1000, runs: 1 };
    }
  }
  // Three blocks of at least 3 runs and 100 ms; the block medians of wall
  // time and block means of CPU time are reduced to their medians, which
  // keeps a burst of load on a shared machine from skewing the result.
  const blockMs = [], blockCpu = [];
  let runs = 0;
  for (let b = 0; b < 3; b++) {
    const times = [];
    const c0 = process.cpuUsage();
    const start = performance.now();
    while (times.length < 50 && (times.length < 3 || performance.now() - start < 100)) {
      const t1 = performance.now();
      result = fn();
      times.push(performance.now() - t1);
    }
    const c = process.cpuUsage(c0);
    blockMs.push(median(times));
    blockCpu.push((c.user + c.system) / 1000 / times.length);
    runs += times.length;
  }
  return { result, ms: median(blockMs), cpuMs: median(blockCpu), runs };
}

function runMaxRectsPacker(set, opts) {
  const { MaxRectsPacker, PACKING_LOGIC } = require('maxrects-packer');
  const logic = { area: PACKING_LOGIC.MAX_AREA, edge: PACKING_LOGIC.MAX_EDGE, fillWidth: PACKING_LOGIC.FILL_WIDTH }[opts.logic];
  const packer = new MaxRectsPacker(set.maxSize, set.maxSize, set.padding, {
    smart: opts.smart, pot: opts.pot, square: opts.square,
    allowRotation: false, border: set.border, logic,
  });
  packer.addArray(set.sizes.map(([w, h], i) => ({ width: w, height: h, data: i })));
  let placed = 0, pageArea = 0, oversized = false;
  for (const bin of packer.bins) {
    pageArea += bin.width * bin.height;
    for (const r of bin.rects) {
      placed++;
      if (r.oversized) oversized = true;
    }
  }
  return { placed, pageArea, pages: packer.bins.length, oversized };
}

function runFreeTexPacker(set, opts) {
  const PackProcessor = require('free-tex-packer-core/PackProcessor.js');
  const TextureRenderer = require('free-tex-packer-core/utils/TextureRenderer.js');
  const { getPackerByType } = require('free-tex-packer-core/packers/index.js');
  const packerClass = getPackerByType(opts.packer);
  const images = {};
  set.sizes.forEach(([w, h], i) => {
    images['s' + String(i).padStart(5, '0')] = { width: w, height: h, _base64: String(i) };
  });
  const options = {
    width: set.maxSize, height: set.maxSize, fixedSize: false, powerOfTwo: false,
    padding: set.border, extrude: 0, allowRotation: false, allowTrim: false,
    detectIdentical: false, packer: packerClass, packerMethod: opts.method,
  };
  let sheets = null, error = null;
  PackProcessor.pack(images, options, (res) => { sheets = res; }, (e) => { error = e; });
  if (error) throw new Error(error.description);
  let placed = 0, pageArea = 0;
  for (const sheet of sheets) {
    placed += sheet.length;
    const { width, height } = TextureRenderer.getSize(sheet, options);
    pageArea += width * height;
  }
  return { placed, pageArea, pages: sheets.length, oversized: false };
}

// configurations lists every peer configuration to run on a set.
function configurations() {
  const out = [];
  for (const smart of [true, false]) {
    for (const pot of [false, true]) {
      for (const square of [false, true]) {
        for (const logic of ['area', 'edge', 'fillWidth']) {
          out.push({ packer: 'maxrects-packer', options: { smart, pot, square, logic } });
        }
      }
    }
  }
  const { list } = require('free-tex-packer-core/packers/index.js');
  for (const packerClass of list) {
    for (const method of Object.values(packerClass.methods)) {
      out.push({ packer: 'free-tex-packer-core', options: { packer: packerClass.type, method } });
    }
  }
  return out;
}

function workerMain() {
  const { set, config } = workerData;
  const run = config.packer === 'maxrects-packer' ? runMaxRectsPacker : runFreeTexPacker;
  const { result, ms, cpuMs, runs } = timeIt(() => run(set, config.options));
  parentPort.postMessage({ result, ms, cpuMs, runs });
}

function runInWorker(set, config, timeoutMs) {
  return new Promise((resolve) => {
    const worker = new Worker(__filename, { workerData: { set, config } });
    let done = false;
    const finish = (v) => { if (!done) { done = true; clearTimeout(timer); resolve(v); } };
    const timer = setTimeout(() => { worker.terminate(); finish({ timeout: true }); }, timeoutMs);
    worker.on('message', (m) => finish(m));
    worker.on('error', (e) => finish({ error: String(e && e.message || e) }));
    worker.on('exit', () => finish({ error: 'worker exited without a result' }));
  });
}

async function main() {
  const sets = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const timeoutMs = 1000 * Number(process.argv[3] || 120);
  const results = [];
  for (const set of sets) {
    const area = set.sizes.reduce((a, [w, h]) => a + w * h, 0);
    for (const config of configurations()) {
      const m = await runInWorker(set, config, timeoutMs);
      const r = { set: set.name, packer: config.packer, options: config.options };
      if (m.timeout) {
        Object.assign(r, { ok: false, note: `timed out after ${timeoutMs / 1000} s` });
      } else if (m.error) {
        Object.assign(r, { ok: false, note: m.error });
      } else {
        const ok = m.result.placed === set.sizes.length && !m.result.oversized;
        Object.assign(r, {
          ok, occupancy: ok ? area / m.result.pageArea : 0, pages: m.result.pages,
          ms: m.ms, cpuMs: m.cpuMs, runs: m.runs, note: ok ? '' : 'not every sprite was placed',
        });
      }
      process.stderr.write(`${r.set} ${r.packer} ${JSON.stringify(r.options)} ` +
        (r.ok ? `${r.occupancy.toFixed(4)} ${r.ms.toFixed(1)} ms` : r.note) + '\n');
      results.push(r);
    }
  }
  process.stdout.write(JSON.stringify(results, null, 1) + '\n');
}

if (isMainThread) {
  main().catch((e) => { process.stderr.write(String(e && e.stack || e) + '\n'); process.exit(1); });
} else {
  workerMain();
}
