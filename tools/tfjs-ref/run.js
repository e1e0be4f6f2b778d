#!/usr/bin/env node
// Reference runner for the Go TF.js -> ONNX importer (infer/tfjs).
//
//   node run.js <model.json> <input.f32> <N> <out.f32|out.json> [--input T] [--shape H,W,C] [--output T ...]
//
// Loads a TF.js graph model from disk (no network, no tfjs-node: the pure
// JavaScript CPU backend), feeds <input.f32> (N*H*W*C little-endian
// float32, NHWC) straight into the cut tensor and writes the requested
// outputs: raw float32 concatenated in order (.f32), or JSON with shapes.
'use strict';
const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs');

function die(msg) {
  process.stderr.write(`tfjs-ref: ${msg}\n`);
  process.exit(1);
}

function parseArgs(argv) {
  const pos = [];
  const opt = {
    input: 'Preprocessor/map/TensorArrayStack/TensorArrayGatherV3',
    shape: [300, 300, 3],
    outputs: [],
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--input') opt.input = argv[++i];
    else if (a === '--shape') opt.shape = argv[++i].split(',').map(Number);
    else if (a === '--output') opt.outputs.push(argv[++i]);
    else pos.push(a);
  }
  if (pos.length !== 4) die('usage: run.js <model.json> <input.f32> <N> <out.f32|out.json> [--input T] [--shape H,W,C] [--output T ...]');
  if (opt.outputs.length === 0) opt.outputs = ['Postprocessor/Slice', 'Postprocessor/ExpandDims_1'];
  return { modelPath: pos[0], inputPath: pos[1], n: Number(pos[2]), outPath: pos[3], ...opt };
}

// loadFromDisk builds an IOHandler-compatible artifact set from model.json and its shards.
function loadFromDisk(modelPath) {
  let json;
  try {
    json = JSON.parse(fs.readFileSync(modelPath, 'utf8'));
  } catch (e) {
    die(`read ${modelPath}: ${e.message}`);
  }
  const dir = path.dirname(modelPath);
  const specs = [];
  const bufs = [];
  for (const group of json.weightsManifest) {
    for (const p of group.paths) bufs.push(fs.readFileSync(path.join(dir, p)));
    specs.push(...group.weights);
  }
  const all = Buffer.concat(bufs);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  return tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: specs, weightData });
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  await tf.setBackend('cpu');
  tf.enableProdMode(); // skip per-op debug checks: same maths, faster
  const model = await tf.loadGraphModel(loadFromDisk(a.modelPath));
  const raw = fs.readFileSync(a.inputPath);
  const data = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  const shape = [a.n, ...a.shape];
  if (data.length !== shape.reduce((x, y) => x * y, 1)) die(`${a.inputPath} has ${data.length} floats, shape ${shape} needs ${shape.reduce((x, y) => x * y, 1)}`);
  const x = tf.tensor(data, shape, 'float32');
  let outs = model.execute({ [a.input]: x }, a.outputs);
  if (!Array.isArray(outs)) outs = [outs];
  if (a.outPath.endsWith('.json')) {
    const res = {};
    a.outputs.forEach((name, i) => { res[name] = { shape: outs[i].shape, data: Array.from(outs[i].dataSync()) }; });
    fs.writeFileSync(a.outPath, JSON.stringify(res));
  } else {
    fs.writeFileSync(a.outPath, Buffer.concat(outs.map((t) => Buffer.from(t.dataSync().buffer))));
  }
  process.stdout.write(JSON.stringify(a.outputs.map((name, i) => ({ name, shape: outs[i].shape }))) + '\n');
}

main().catch((e) => die(e.stack || String(e)));
